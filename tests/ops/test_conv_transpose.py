"""conv_transpose2d and conv_transpose1d against torch (values and the gradients of input,
weight and bias), PyTorch's output sizes with output_padding up to the stride or the
dilation, symbolic sizes, central differences, and every bad argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import graphc as gc
from tests.ops.cases_conv import sampled_gradient_check

CASES_2D = [  # x shape, w shape, kwargs
    ((2, 4, 3, 5), (4, 3, 3, 3), {}),
    ((2, 4, 3, 5), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 3, 5), (4, 2, 3, 3), dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 2),
                                      groups=2)),
    ((1, 6, 4, 4), (6, 1, 3, 3), dict(stride=2, groups=6, dilation=2, output_padding=1)),
    ((2, 2, 3, 4), (2, 3, 2, 3), dict(stride=1, dilation=3, output_padding=2, padding=2)),
    ((1, 3, 2, 2), (3, 2, 5, 4), dict(stride=3, padding=(2, 1), dilation=(1, 2))),
]
CASES_1D = [
    ((2, 4, 5), (4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 5), (4, 1, 3), dict(stride=2, groups=2, dilation=4, output_padding=3)),
    ((1, 2, 6), (2, 2, 4), dict(stride=3, padding=2)),
]


def _check(fn, tfn, x_shape, w_shape, kwargs):
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    xv, wv = rng.normal(size=x_shape), rng.normal(size=w_shape)
    out_channels = w_shape[1] * kwargs.get("groups", 1)
    bv = rng.normal(size=out_channels)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xv, wv, bv))
    ty = tfn(tx, tw, tb, **kwargs)
    g = rng.normal(size=tuple(ty.shape))
    (ty * torch.tensor(g)).sum().backward()
    x, w, b = (gc.input(n, a.shape, "float64") for n, a in (("x", xv), ("w", wv), ("b", bv)))
    y = fn(x, w, b, **kwargs)
    assert y.shape == tuple(ty.shape)
    got = gc.compile([x, w, b], [y, *gc.grad(gc.sum(y * gc.constant(g)), [x, w, b])],
                     backend="numpy")(xv, wv, bv)
    expected = [ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()]
    for a, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape,w_shape,kwargs", CASES_2D)
def test_conv_transpose2d_matches_torch(x_shape, w_shape, kwargs):
    _check(gc.conv_transpose2d, F.conv_transpose2d, x_shape, w_shape, kwargs)


@pytest.mark.parametrize("x_shape,w_shape,kwargs", CASES_1D)
def test_conv_transpose1d_matches_torch(x_shape, w_shape, kwargs):
    _check(gc.conv_transpose1d, F.conv_transpose1d, x_shape, w_shape, kwargs)


def test_gradient_by_central_differences():
    rng = np.random.default_rng(3)
    xv, wv = rng.normal(size=(2, 4, 3, 3)), rng.normal(size=(4, 2, 3, 2))
    r = rng.normal(size=(2, 4, 6, 6))
    sampled_gradient_check(lambda x, w: gc.sum(gc.tanh(gc.conv_transpose2d(
        x, w, stride=2, padding=(1, 0), output_padding=(1, 0), groups=2)) * r), (xv, wv))


def test_symbolic_sizes():
    x = gc.input("x", ("N", 4, "H", "W"), "float64")
    w = gc.input("w", (4, 3, 3, 3), "float64")
    y = gc.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    assert [str(d) for d in y.shape] == ["N", "3", "2*H", "2*W"]
    y2 = gc.conv_transpose2d(x, w, dilation=3, output_padding=2, padding=2)
    fn = gc.compile([x, w], [y, y2, *gc.grad(gc.sum(y * y) + gc.sum(y2 * y2), [x, w])],
                    backend="numpy")
    for shape in [(1, 4, 2, 3), (2, 4, 5, 4)]:
        xv = np.random.default_rng(0).normal(size=shape)
        wv = np.random.default_rng(1).normal(size=(4, 3, 3, 3))
        got = fn(xv, wv)
        np.testing.assert_allclose(got[0], F.conv_transpose2d(
            torch.tensor(xv), torch.tensor(wv), stride=2, padding=1,
            output_padding=1).numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[1], F.conv_transpose2d(
            torch.tensor(xv), torch.tensor(wv), dilation=3, output_padding=2,
            padding=2).numpy(), rtol=1e-12, atol=1e-12)


def _x(shape=(2, 4, 5, 5), dtype="float32"):
    return gc.input("x", shape, dtype)


def _w(shape=(4, 3, 3, 3), dtype="float32"):
    return gc.input("w", shape, dtype)


HERE = r"\(at .*test_conv_transpose\.py:\d+\)"


@pytest.mark.parametrize("build,message", [
    (lambda: gc.conv_transpose2d(_x((4, 5, 5)), _w()),
     r"conv_transpose2d: x must be 4-D \(NCHW / OIHW\), got shape \(4, 5, 5\)"),
    (lambda: gc.conv_transpose2d(_x(), _w((3, 3, 3, 3))),
     r"conv_transpose2d: x has 4 channels but w \(in, out / groups, kh, kw\) expects 3"),
    (lambda: gc.conv_transpose2d(_x(), _w(), groups=3),
     r"conv_transpose2d: w's input channels \(4\) must be divisible by groups 3"),
    (lambda: gc.conv_transpose2d(_x(), _w(), groups=0),
     r"conv_transpose2d: groups must be a positive int, got 0"),
    (lambda: gc.conv_transpose2d(_x(), _w(), stride=2, output_padding=2),
     r"conv_transpose2d: output_padding \(2, 2\) must be smaller than the stride \(2, 2\) or "
     r"the dilation \(1, 1\)"),
    (lambda: gc.conv_transpose2d(_x(), _w(), output_padding=-1),
     r"conv_transpose2d: output_padding must be at least 0, got -1"),
    (lambda: gc.conv_transpose2d(_x((1, 4, 1, 1)), _w(), padding=2),
     r"conv_transpose2d: the output would have size -1 < 1 along an axis of size 1"),
    (lambda: gc.conv_transpose2d(_x(), _w(), gc.input("b", (4,))),
     r"conv_transpose2d: bias must have shape \(3,\) for w \(4, 3, 3, 3\), got \(4,\)"),
    (lambda: gc.conv_transpose2d(_x(dtype="int32"), _w()),
     r"conv_transpose2d: x must be float32 or float64, got int32"),
    (lambda: gc.conv_transpose1d(_x((2, 4, 5)), _w((4, 3, 3)), stride=(1, 2)),
     r"conv_transpose1d: stride must be an int of at least 1, got \(1, 2\)"),
    (lambda: gc.conv_transpose1d(_x((2, 4, 5)), _w((4, 3, 3)), stride=2, output_padding=3,
                                 dilation=3),
     r"conv_transpose1d: output_padding 3 must be smaller than the stride 2 or the dilation 3"),
    (lambda: gc.conv_transpose1d(_x(), _w((4, 3, 3))),
     r"conv_transpose1d: x must be 3-D \(NCL / OCK\), got shape \(2, 4, 5, 5\)"),
])
def test_build_errors(build, message):
    with pytest.raises((gc.GraphError, gc.GraphTypeError), match=message + r".*" + HERE):
        build()
