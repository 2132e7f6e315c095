"""The argsort kernel: lengths of every merge pattern (1, 2, 3, powers of two and between),
lines along inner axes, floats with NaN and infinities, bools and ints, descending, and
the same result on any thread count (one program per dtype holds every length)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

RNG = np.random.default_rng(14)
LENGTHS = [1, 2, 3, 8, 9, 31, 64, 100]


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_argsort_matches_a_stable_numpy_sort(dtype):
    inputs, outputs, arrays, expected = [], [], [], []
    for n in LENGTHS:
        shape = (3, n, 2)
        if dtype == "bool":
            a = RNG.random(shape) < 0.5
        else:
            a = RNG.integers(-3, 3, size=shape).astype(dtype)
        if dtype == "float32" and n > 2:
            a[0, 1, 0], a[1, 2, 1], a[2, 0, 0] = np.nan, np.inf, -np.inf
        x = gc.input(f"x{n}", shape, dtype)
        inputs.append(x)
        arrays.append(a)
        outputs += [gc.argsort(x, 1), gc.argsort(x, 1, descending=True)]
        expected += [np.argsort(a, axis=1, kind="stable"),
                     n - 1 - np.flip(np.argsort(np.flip(a, 1), axis=1, kind="stable"), 1)]
    for threads in (1, 3):
        got = gc.compile(inputs, outputs, threads=threads)(*arrays)
        for g, e, what in zip(got, expected, [(n, d) for n in LENGTHS for d in ("up", "down")]):
            np.testing.assert_array_equal(g, e, err_msg=f"length, order {what}, threads={threads}")
