"""`graphc tune`: measure the GEMM's blockings on this machine and keep the best per target.

The analytical defaults (gemm/blocking.py) size the register tile by the target's vector
registers and the cache blocks by typical cache sizes. Real cores differ (Zen 3's AVX2
GEMM ran 8 x 16 tiles at a third of the speed of 4 x 16 or 6 x 16 ones), so a short search
measures a float32 GEMM at 1 thread for each candidate, one knob at a time (tile rows,
then depth block, then row block), keeps a candidate only when it beats the current
choice by more than NOISE, and stores the result in the disk cache for the target
(runtime/target.py); later compiles for that target use it. Results stay bit-identical
across thread counts for a given tuning (the depth block fixes every sum's order).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np

from graphc.backends.llvm.gemm import blocking
from graphc.backends.llvm.runtime import target
from graphc.compiler import compile as compile_graph
from graphc.ops.leaf import input as graph_input
from graphc.ops.linalg import matmul

SIZE = 512  # of the square float32 GEMM each candidate is timed on
NOISE = 0.03  # a candidate must be this much faster than the current choice to replace it
CALLS = 9  # timed calls per candidate (the median counts)
ROWS = (4, 6, 8)
DEPTHS = (256, 384, 512)
ROW_BLOCKS = (64, 128, 192)


@dataclasses.dataclass
class Trial:
    """One measured candidate."""

    tuning: target.Tuning
    seconds: float

    @property
    def gflops(self) -> float:
        return 2 * SIZE ** 3 / self.seconds / 1e9


def candidates(chosen: target.Target) -> list[tuple[str, tuple[int, ...]]]:
    """The knobs searched and their values, those the target's registers allow."""
    with target.using(dataclasses.replace(chosen, tuning=target.Tuning())):
        fits = blocking.mr()
    return [("gemm_rows", tuple(r for r in ROWS if r <= fits)), ("gemm_depth", DEPTHS),
            ("gemm_block_rows", ROW_BLOCKS)]


def measure(chosen: target.Target, tuning: target.Tuning) -> float:
    """Median seconds of a SIZE^3 float32 GEMM at 1 thread compiled with `tuning`."""
    a, b = graph_input("a", (SIZE, SIZE)), graph_input("b", (SIZE, SIZE))
    step = compile_graph([a, b], matmul(a, b), threads=1,
                         target=dataclasses.replace(chosen, tuning=tuning))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SIZE, SIZE)).astype(np.float32)
    step(x, x)
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        step(x, x)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def tune(chosen: target.Target, progress: bool | None = None,
         timer: Callable[[target.Target, target.Tuning], float] | None = None) -> list[Trial]:
    """Search the blockings for `chosen` (a target this CPU runs), store the best for it
    and return every trial (the last is the choice). `progress`: a bar on stderr (default:
    when stderr is a terminal)."""
    missing = chosen.missing_on_host()
    if missing:
        raise ValueError(f"graphc tune: target {chosen.name!r} needs {', '.join(missing)}, "
                         f"which this CPU lacks; tune it on a machine that runs it")
    timer = timer or measure
    knobs = candidates(chosen)
    total = 1 + sum(len(values) for _, values in knobs)
    show = sys.stderr.isatty() if progress is None else progress
    trials: list[Trial] = []
    with _uncached(), _bar(total, show) as advance:
        best = Trial(target.Tuning(), timer(chosen, target.Tuning()))
        trials.append(best)
        advance()
        for knob, values in knobs:
            for value in values:
                tuning = dataclasses.replace(best.tuning, **{knob: value})
                trial = Trial(tuning, timer(chosen, tuning))
                trials.append(trial)
                advance()
                if trial.seconds < best.seconds * (1 - NOISE):
                    best = trial
    trials.append(best)
    target.store_tuning(chosen, best.tuning)
    return trials


@contextlib.contextmanager
def _uncached() -> Iterator[None]:
    """No disk-cache entry for the candidates (the tuning itself is stored after)."""
    saved = os.environ.get("GRAPHC_CACHE")
    os.environ["GRAPHC_CACHE"] = "0"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["GRAPHC_CACHE"]
        else:
            os.environ["GRAPHC_CACHE"] = saved


@contextlib.contextmanager
def _bar(total: int, show: bool) -> Iterator[Callable[[], None]]:
    from tqdm.auto import tqdm  # only when tuning

    with tqdm(total=total, desc="graphc tune", unit="candidate", disable=not show,
              file=sys.stderr) as bar:
        yield lambda: bar.update(1)


def report(chosen: target.Target, trials: list[Trial]) -> str:
    """What was measured and what was chosen, for humans."""
    lines = [f"tuned for {chosen.describe()}",
             f"float32 GEMM {SIZE}^3 at 1 thread, median of {CALLS} calls:"]
    for trial in trials[:-1]:
        lines.append(f"  {trial.tuning.to_json():60} {trial.seconds * 1e3:8.2f} ms "
                     f"{trial.gflops:7.1f} GFLOP/s")
    lines.append(f"chosen: {trials[-1].tuning.to_json()} (stored in the disk cache; "
                 f"`graphc info` shows it)")
    return "\n".join(lines)
