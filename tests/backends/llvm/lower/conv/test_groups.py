"""Grouped and dilated convolutions on each LLVM path against the NumPy backend: the direct
kernel (stride 1), the planes kernel (groups of few output channels: strides 1-3, masked
loads, even/odd splits, gathers), the GEMMs (groups as batch items, dilation in the index
maps), col2im, the flipped-kernel GEMM and the loops (non-finite weights); that the paths
are the ones meant for the shapes; and identical bits for any thread count."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.lower.conv import paths
from graphc.backends.llvm.lower.conv.grad_weight import _plan
from graphc.backends.llvm.lower.conv.planes import Planes

TOL = {"float32": dict(rtol=2e-5, atol=2e-5), "float64": dict(rtol=1e-12, atol=1e-12)}

CONVS = [  # x shape, w shape, kwargs, (forward, input gradient, weight gradient) paths
    ((2, 4, 9, 10), (8, 2, 3, 2), dict(groups=2, dilation=(2, 3), padding=(1, 2)),
     ("direct", "direct", "planes")),
    ((2, 6, 11, 13), (6, 1, 3, 3), dict(groups=6, stride=2, padding=1),
     ("planes", "col2im", "planes")),
    ((1, 4, 20, 37), (8, 1, 5, 5), dict(groups=4, stride=3, dilation=(1, 2), padding=2),
     ("planes", "col2im", "planes")),
    ((2, 6, 11, 40), (12, 2, 3, 2), dict(groups=3, stride=(1, 2), padding=(2, 1)),
     ("planes", "col2im", "planes")),
    ((2, 32, 12, 12), (32, 16, 3, 3), dict(groups=2, stride=2, padding=1),
     ("gemm", "col2im", "gemm")),
    ((2, 32, 24, 24), (32, 32, 5, 5), dict(padding=4, dilation=2), ("gemm", "forward", "gemm")),
]


def _graph(x_shape, w_shape, kwargs, dtype, bias=False):
    x, w = gc.input("x", x_shape, dtype), gc.input("w", w_shape, dtype)
    b = gc.input("b", (w_shape[0],), dtype)
    y = gc.conv2d(x, w, b if bias else None, **kwargs)
    if bias:
        y = gc.relu(y)
    g = gc.input("g", y.shape, dtype)
    return [x, w, b, g], [y, *gc.grad(gc.sum(y * g), [x, w])]


def _args(inputs, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=n.shape).astype(n.dtype) for n in inputs]


def _paths(outputs, x_shape, w_shape):
    y = outputs[0]
    grad_input = next(n for n in gc.Graph(outputs) if n.op == "conv2d_grad_input")
    grad_weight = next(n for n in gc.Graph(outputs) if n.op == "conv2d_grad_weight")
    plan = _plan(grad_weight, x_shape, y.shape)
    weight = "planes" if isinstance(plan, Planes) else "gemm" if plan is None else "direct"
    return (paths.forward_path(y, x_shape, w_shape),
            paths.grad_input_path(grad_input, y.shape, w_shape), weight)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("x_shape,w_shape,kwargs,expected_paths", CONVS,
                         ids=[f"{c[2]}" for c in CONVS])
def test_each_path_matches_the_reference(x_shape, w_shape, kwargs, expected_paths, dtype):
    inputs, outputs = _graph(x_shape, w_shape, kwargs, dtype)
    assert _paths(outputs, x_shape, w_shape) == expected_paths
    args = _args(inputs)
    got = gc.compile(inputs, outputs)(*args)
    expected = gc.compile(inputs, outputs, backend="numpy")(*args)
    for a, e in zip(got, expected, strict=True):
        assert a.shape == e.shape and a.dtype == e.dtype
        scale = max(1.0, float(np.abs(e).max()))
        np.testing.assert_allclose(a / scale, e / scale, **TOL[dtype])


@pytest.mark.parametrize("case", [CONVS[0], CONVS[1], CONVS[3]], ids=["direct", "planes-s2",
                                                                    "planes-s12"])
def test_bias_and_relu_run_in_the_kernel(case):
    x_shape, w_shape, kwargs, _ = case
    inputs, outputs = _graph(x_shape, w_shape, kwargs, "float32", bias=True)
    compiled = gc.compile(inputs, outputs[:1])
    assert "fused_conv2d" in compiled.to_dot()
    args = _args(inputs, seed=1)
    np.testing.assert_allclose(compiled(*args), gc.compile(inputs, outputs[:1],
                                                           backend="numpy")(*args),
                               **TOL["float32"])


@pytest.mark.parametrize("case", [CONVS[0], CONVS[2]], ids=["direct", "planes-s3"])
def test_identical_bits_for_any_thread_count(case):
    x_shape, w_shape, kwargs, _ = case
    inputs, outputs = _graph(x_shape, w_shape, kwargs, "float32")
    args = _args(inputs, seed=2)
    reference = gc.compile(inputs, outputs, threads=1)(*args)
    got = gc.compile(inputs, outputs, threads=2)(*args)
    for a, r in zip(got, reference, strict=True):
        np.testing.assert_array_equal(a, r)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("case", [CONVS[0], CONVS[1]], ids=["direct", "planes"])
def test_non_finite_values_land_where_the_reference_puts_them(case):
    """inf in a weight and NaN in the input: the direct path's input gradient falls back to
    the loops (they multiply no padding, as the reference); the planes kernel multiplies
    the padding as the reference's forward does."""
    x_shape, w_shape, kwargs, _ = case
    inputs, outputs = _graph(x_shape, w_shape, kwargs, "float64")
    args = _args(inputs, seed=3)
    args[1].flat[4] = np.inf
    args[0].flat[7] = np.nan
    for output in outputs:
        (got,) = gc.compile(inputs, [output])(*args)
        (expected,) = gc.compile(inputs, [output], backend="numpy")(*args)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        finite = np.isfinite(expected)
        np.testing.assert_array_equal(got[~finite], expected[~finite])
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12)
