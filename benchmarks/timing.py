"""Timing a call: the first call alone (it includes any compilation), a warm-up, then
`repeat` timed calls, of which the median and the quartiles are reported."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

WARMUP_SECONDS = 0.2
WARMUP_CALLS = 3
MIN_SAMPLES = 5


def measure(run: Callable[[], None], repeat: int, budget: float) -> dict:
    """Seconds per call of `run`: {"first", "median", "q1", "q3", "min", "samples"}.

    After the first call, warm up for WARMUP_CALLS calls and at least WARMUP_SECONDS, then
    time `repeat` calls one by one, stopping early (after at least MIN_SAMPLES) once the
    timed calls have taken `budget` seconds, so slow columns do not stall the run."""
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    calls, start = 0, time.perf_counter()
    while calls < WARMUP_CALLS or time.perf_counter() - start < min(WARMUP_SECONDS, budget):
        run()
        calls += 1
    samples: list[float] = []
    spent = 0.0
    while len(samples) < repeat and (len(samples) < MIN_SAMPLES or spent < budget):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
        spent += samples[-1]
    q1, _, q3 = statistics.quantiles(samples, n=4) if len(samples) > 1 else samples * 3
    return {"first": first, "median": statistics.median(samples), "q1": q1, "q3": q3,
            "min": min(samples), "samples": len(samples)}
