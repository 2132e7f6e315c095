"""The entry's schedule: small kernels run on thread 0 alone, consecutive ones without a
barrier between them; results, errors and profiles are unchanged by it."""

from __future__ import annotations

import re

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.schedule.plan import make_plan
from graphc.backends.llvm.schedule.serial import serial_runs


def _small_step(threads: int):
    rng = np.random.default_rng(0)
    x = gc.input("x", (8, 6), "float64")
    y = gc.input("y", (8,), "int32")
    w = gc.param("w", rng.normal(size=(6, 4)))
    b = gc.param("b", np.zeros(4))
    loss = gc.softmax_cross_entropy(gc.tanh(x @ w + b), y)
    gw, gb = gc.grad(loss, [w, b])
    step = gc.compile([x, y], [loss], updates={w: w - 0.1 * gw, b: b - 0.1 * gb},
                      threads=threads)
    return step, (w, b), (rng.normal(size=(8, 6)), rng.integers(0, 4, 8).astype(np.int32))


def _barrier_calls(ir_text: str) -> int:
    entry = ir_text[ir_text.index('@"graphc_entry"'):]
    return len(re.findall(r'call i32 @"gc_barrier"', entry[:entry.index("\n}\n")]))


def test_small_kernels_share_barriers_and_compute_the_same_bits():
    runs = []
    for threads in (1, 2, 3):
        step, params, args = _small_step(threads)
        losses = [step(*args)[0] for _ in range(3)]
        runs.append((losses, [p.value.copy() for p in params]))
    for losses, values in runs[1:]:
        np.testing.assert_array_equal(losses, runs[0][0])
        for got, expected in zip(values, runs[0][1]):
            np.testing.assert_array_equal(got, expected)
    ir_text = step.compiled().ir
    kernels = len(re.findall(r'^define internal void @"k\d+_', ir_text, re.M))
    # Every kernel here is tiny: one run of serial kernels, one barrier, plus the exit's.
    assert kernels > 5 and _barrier_calls(ir_text) == 2
    from graphc.backends.llvm.lower import table
    assert len(serial_runs(make_plan(step.program, {}, table()), table())) == 1


def test_big_kernels_keep_a_barrier_each():
    x = gc.input("x", (512, 256), "float64")
    f = gc.compile([x], gc.exp(gc.sin(x) @ gc.transpose(x)) * 2.0, threads=2)
    f(np.zeros((512, 256)))
    from graphc.backends.llvm.lower import table
    runs = serial_runs(make_plan(f.program, {}, table()), table())
    assert all(len(run) == 1 for run in runs)
    assert _barrier_calls(f.compiled().ir) == len(runs) + 1


@pytest.mark.parametrize("threads", [1, 2])
def test_an_error_in_a_serial_run_stops_it_and_is_reported(threads):
    ids = gc.input("ids", (5,), "int64")
    table = gc.param("table", np.arange(20.0).reshape(10, 2))
    f = gc.compile([ids], gc.exp(gc.embedding(ids, table) * 2.0) + 1.0, threads=threads)
    with pytest.raises(ValueError, match="embedding"):
        f(np.array([1, 2, 30, 4, 5]))
    good = np.array([1, 2, 3, 4, 9])
    np.testing.assert_allclose(f(good), np.exp(table.value[good] * 2.0) + 1.0)
