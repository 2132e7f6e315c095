"""The worker pool (graphc/backends/llvm/runtime/threads.py): workers spin in native code between
jobs and park when idle; jobs of different thread counts interleave; a function's code
may be dropped right after a threaded call; errors leave the pool usable."""

from __future__ import annotations

import gc as python_gc
import time

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.runtime.threads import POOL


def _layer(threads: int, scale: float):
    rng = np.random.default_rng(threads)
    x = gc.input("x", ("N", 64))
    w = gc.param("w", rng.normal(size=(64, 48)).astype(np.float32))
    f = gc.compile([x], gc.tanh(x @ w) * scale, threads=threads)
    return f, w


def _expected(a, w, scale):
    """NumPy's float32 result: the LLVM GEMM sums 64 terms in another order and its tanh is
    a polynomial, hence the tests' 2e-5 (float32 rounding over 64 terms, times the scale)."""
    return np.tanh(a @ w.value) * scale


def test_interleaved_thread_counts_and_dropped_functions():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 64)).astype(np.float32)
    kept = [_layer(n, float(n)) for n in (1, 2, 3, 4)]
    for round_ in range(6):
        for f, w in kept[::-1] if round_ % 2 else kept:
            scale = float(f.options["threads"])
            np.testing.assert_allclose(f(a), _expected(a, w, scale), rtol=2e-5, atol=2e-5)
        # A function used on threads and dropped at once: its native code is freed while
        # the pool lives on.
        f, w = _layer(2 + round_ % 3, 0.5)
        np.testing.assert_allclose(f(a), _expected(a, w, 0.5), rtol=2e-5, atol=2e-5)
        del f
        python_gc.collect()


def test_parked_workers_wake_for_the_next_job():
    f, w = _layer(2, 1.0)
    a = np.random.default_rng(1).normal(size=(300, 64)).astype(np.float32)
    first = f(a)
    time.sleep(0.05)  # far past the spin budget: the worker parks
    assert POOL._parked, "the idle worker should have parked"
    # The job needs the parked worker at its barriers: it completes only if woken.
    np.testing.assert_array_equal(f(a), first)


def test_a_native_error_on_threads_leaves_the_pool_working():
    ids = gc.input("ids", ("N",), "int64")
    table = gc.param("table", np.arange(20, dtype=np.float32).reshape(10, 2))
    f = gc.compile([ids], gc.embedding(ids, table) * 2.0, threads=2)
    good = np.arange(10, dtype=np.int64).repeat(4000)
    bad = good.copy()
    bad[-7] = 10
    with pytest.raises(ValueError, match="embedding"):
        f(bad)
    np.testing.assert_array_equal(f(good), table.value[good] * 2.0)
