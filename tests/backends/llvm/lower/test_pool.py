"""Pooling and its gradients on the LLVM backend against the NumPy backend, exactly:
windows that tile the image, disjoint windows that leave rows and columns unread,
overlapping and padded windows, ties, NaN and -inf (the first maximum takes the
gradient); dilation, ceil_mode, count_include_pad, divisor_override, 1-D pools, adaptive
pools (narrow and wide windows, windows larger than UNROLL taps looped)."""

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


MORE = [  # function, input shape, args, kwargs
    ("max_pool2d", (2, 2, 7, 8), (3,), dict(stride=2, padding=1, dilation=2, ceil_mode=True)),
    ("max_pool2d", (1, 2, 7, 7), (2,), dict(ceil_mode=True)),
    ("avg_pool2d", (2, 2, 7, 8), (3,), dict(stride=2, padding=1, ceil_mode=True,
                                            count_include_pad=False)),
    ("avg_pool2d", (2, 2, 6, 8), ((2, 4),), dict(stride=3, padding=(1, 2), ceil_mode=True,
                                                 divisor_override=3)),
    ("max_pool1d", (2, 3, 9), (3,), dict(stride=2, padding=1, dilation=2, ceil_mode=True)),
    ("avg_pool1d", (2, 3, 9), (4,), dict(stride=3, padding=2, ceil_mode=True)),
    ("adaptive_max_pool2d", (2, 2, 7, 8), ((3, 5),), {}),
    ("adaptive_max_pool2d", (2, 2, 3, 4), ((5, 7),), {}),
    ("adaptive_max_pool2d", (1, 2, 12, 13), (1,), {}),  # 156 taps: loops
    ("adaptive_avg_pool2d", (2, 2, 7, 8), ((3, 5),), {}),
    ("adaptive_avg_pool2d", (1, 2, 13, 12), ((1, 2),), {}),
]


@pytest.mark.parametrize("case", MORE, ids=[f"{c[0]}{c[1]}{c[2]}{c[3]}" for c in MORE])
def test_more_pools_and_gradients(case):
    """Forward, the input gradient and (max pools) the gradient's gradient in g."""
    name, shape, args, kwargs = case
    dtype = "float32"
    x = gc.input("x", shape, dtype)
    y = getattr(gc, name)(x * 1.0, *args, **kwargs)
    g = gc.input("g", y.shape, dtype)
    (dx,) = gc.grad(gc.sum(y * g), [x])
    outputs = [y, dx, *gc.grad(gc.sum(dx * dx), [g])]
    rng = np.random.default_rng(0)
    values = _values(shape, dtype) if len(shape) == 4 else \
        rng.integers(-2, 3, size=shape).astype(dtype)
    inputs_args = [values, rng.normal(size=y.shape).astype(dtype)]
    got = gc.compile([x, g], outputs, backend="llvm", threads=2)(*inputs_args)
    expected = gc.compile([x, g], outputs, backend="numpy")(*inputs_args)
    # Max values are exact; sums of overlapping windows' gradients (and what is gathered
    # from them) and averages add in another order than NumPy (whose bincount sums in
    # float64).
    for k, (gv, ev) in enumerate(zip(got, expected, strict=True)):
        assert gv.shape == ev.shape and gv.dtype == ev.dtype
        if name.startswith(("max", "adaptive_max")) and k == 0:
            np.testing.assert_array_equal(gv, ev)
        else:
            np.testing.assert_allclose(gv, ev, rtol=1e-6, atol=1e-7)
