"""Convolution packing and gradient paths of the LLVM backend against the NumPy backend:
image rows at least one register panel wide (contiguous masked loads, panels that straddle
rows, partial last panels), few input channels and strides (input gradient as a GEMM plus
col2im), and identical bits for any thread count."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

TOL = {"float32": dict(rtol=1e-4, atol=2e-5), "float64": dict(rtol=1e-10, atol=1e-12)}

CONVS = [  # N, C, H, W, O, kh, kw, stride, padding
    (2, 3, 5, 40, 4, 3, 3, 1, 1),    # 40-pixel rows: whole and straddling panels
    (1, 2, 4, 70, 3, 3, 5, 1, 2),    # rows over two panels plus a partial one
    (2, 2, 6, 33, 5, 2, 2, 1, 0),    # 32 outputs a row: one panel exactly
    (3, 1, 9, 9, 6, 5, 5, 1, 2),     # one input channel
    (2, 6, 14, 14, 16, 5, 5, 1, 0),  # lenet's second layer, smaller batch
    (2, 3, 11, 37, 4, 3, 3, 2, 1),   # stride 2
    (1, 2, 12, 10, 3, 4, 3, 3, 0),   # stride 3, rectangular kernel, unread input edge
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", CONVS, ids=["x".join(map(str, c)) for c in CONVS])
def test_conv2d_and_gradients(shape, dtype):
    n, c, h, wd, o, kh, kw, stride, padding = shape
    rng = np.random.default_rng(sum(shape))
    x, w = gc.input("x", (n, c, h, wd), dtype), gc.input("w", (o, c, kh, kw), dtype)
    y = gc.conv2d(x, w, stride=stride, padding=padding)
    g = gc.input("g", y.shape, dtype)
    outputs = [y, *gc.grad(gc.sum(y * g), [x, w])]
    args = [rng.normal(size=s).astype(dtype) for s in ((n, c, h, wd), (o, c, kh, kw), y.shape)]
    got = gc.compile([x, w, g], outputs, backend="llvm")(*args)
    expected = gc.compile([x, w, g], outputs, backend="numpy")(*args)
    for gv, ev in zip(got, expected, strict=True):
        assert gv.shape == ev.shape and gv.dtype == ev.dtype
        np.testing.assert_allclose(gv, ev, **TOL[dtype])


@pytest.mark.parametrize("shape", [CONVS[0], CONVS[3], CONVS[5]])
def test_identical_bits_for_any_thread_count(shape):
    n, c, h, wd, o, kh, kw, stride, padding = shape
    rng = np.random.default_rng(1)
    x, w = gc.input("x", (n, c, h, wd)), gc.input("w", (o, c, kh, kw))
    y = gc.conv2d(x, w, stride=stride, padding=padding)
    outputs = [y, *gc.grad(gc.sum(y * y), [x, w])]
    args = [rng.normal(size=s).astype(np.float32) for s in ((n, c, h, wd), (o, c, kh, kw))]
    reference = gc.compile([x, w], outputs, threads=1)(*args)
    for threads in (2, 3):
        got = gc.compile([x, w], outputs, threads=threads)(*args)
        for gv, rv in zip(got, reference, strict=True):
            np.testing.assert_array_equal(gv, rv, err_msg=f"threads={threads}")
