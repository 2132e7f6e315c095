"""Pooling and its gradients on the LLVM backend against the NumPy backend, exactly:
windows that tile the image, disjoint windows that leave rows and columns unread,
overlapping and padded windows, ties, NaN and -inf (the first maximum takes the
gradient)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

POOLS = [  # shape, kernel, stride, padding
    ((2, 3, 6, 8), 2, 2, 0),   # windows tile the image
    ((2, 2, 7, 9), 2, 2, 0),   # last row and column unread
    ((1, 2, 8, 9), 2, 3, 0),   # gaps between windows
    ((1, 2, 7, 7), 3, 2, 1),   # overlapping, padded
    ((2, 1, 5, 6), (2, 3), (1, 2), 0),  # overlapping rows only
]


def _values(shape, dtype):
    """Few distinct values (ties), a NaN, and a plane of -inf."""
    rng = np.random.default_rng(int(np.prod(shape)))
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    x.flat[3] = np.nan
    x[-1, -1] = -np.inf
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", POOLS, ids=[str(p[0]) + f"k{p[1]}s{p[2]}p{p[3]}"
                                             for p in POOLS])
def test_pools_and_gradients(case, dtype):
    shape, kernel, stride, padding = case
    x = gc.input("x", shape, dtype)
    top = gc.max_pool2d(x, kernel, stride=stride, padding=padding)
    mean = gc.avg_pool2d(x * 1.0, kernel, stride=stride, padding=padding)
    g = gc.input("g", top.shape, dtype)
    outputs = [top, mean, *gc.grad(gc.sum(top * g), [x]), *gc.grad(gc.sum(mean * g), [x])]
    rng = np.random.default_rng(0)
    args = [_values(shape, dtype), rng.normal(size=top.shape).astype(dtype)]
    got = gc.compile([x, g], outputs, backend="llvm", threads=2)(*args)
    expected = gc.compile([x, g], outputs, backend="numpy")(*args)
    np.testing.assert_array_equal(got[0], expected[0])
    # Averages and gradients of overlapping windows sum in another order than NumPy.
    rtol = 1e-6 if dtype == "float32" else 1e-15
    for gv, ev in zip(got[1:], expected[1:], strict=True):
        assert gv.dtype == ev.dtype
        np.testing.assert_allclose(gv, ev, rtol=rtol, atol=0)
