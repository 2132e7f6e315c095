"""gc.pad against torch.nn.functional.pad (values and gradients) for every mode, negative
pads, symbolic dims, integer dtypes, second derivatives, and every bad argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import graphc as gc
from tests.ops.cases_conv import sampled_gradient_check

# (shape, pad, mode): torch's pad order, last axis first.
CASES = [
    ((2, 3, 5, 6), (1, 2), "constant"),
    ((2, 3, 5, 6), (1, 2, 0, 3, 1, 1), "constant"),
    ((2, 3, 5, 6), (-1, 2, 3, -2), "constant"),
    ((2, 3, 5, 6), (1, 2, 2, 1), "reflect"),
    ((2, 3, 5, 6), (5, 4, 0, 0), "reflect"),  # up to size - 1
    ((2, 3, 5, 6), (-1, 2, 3, -2), "reflect"),  # mirrors the uncropped input
    ((2, 3, 5, 6), (1, 2, 3, 1), "replicate"),
    ((2, 5, 6), (4, 0), "replicate"),
    ((2, 3, 5, 6), (2, 3, 1, 0), "circular"),
    ((2, 3, 5, 6), (6, 6, 5, 5), "circular"),  # up to the size
    ((2, 3, 5, 6), (0, 0, 3, -2), "circular"),  # wraps the cropped input
    ((1, 2, 3, 4, 5), (1, 1, 2, 0, 1, 2), "replicate"),
]


def _torch_pad(x, pad, mode, value=None):
    kwargs = {"value": value} if value is not None else {}
    return F.pad(torch.tensor(x, requires_grad=True), pad, mode=mode, **kwargs)


@pytest.mark.parametrize("shape,pad,mode", CASES, ids=[f"{m}{p}" for _, p, m in CASES])
def test_values_and_gradients_match_torch(shape, pad, mode):
    rng = np.random.default_rng(len(shape) + len(pad))
    xv = rng.normal(size=shape)
    x = gc.input("x", shape, "float64")
    y = gc.pad(x, pad, mode=mode)
    expected = _torch_pad(xv, pad, mode)
    g = rng.normal(size=tuple(expected.shape))
    out, dx = gc.compile([x], [y, gc.grad(gc.sum(y * gc.constant(g)), [x])[0]],
                         backend="numpy")(xv)
    tx = torch.tensor(xv, requires_grad=True)
    (F.pad(tx, pad, mode=mode) * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(out, expected.detach().numpy())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_gradient_by_central_differences_and_second_derivative(mode):
    x0 = np.random.default_rng(0).normal(size=(2, 4, 5))
    r = np.random.default_rng(1).normal(size=(2, 7, 8))
    sampled_gradient_check(lambda x: gc.sum(gc.tanh(gc.pad(x, (1, 2, 2, 1), mode=mode)) * r),
                           (x0,), samples=12)
    # pad and pad_grad are each other's gradients: grad of <grad, v> goes back through both.
    x = gc.input("x", x0.shape, "float64")
    (dx,) = gc.grad(gc.sum(gc.pad(x, (1, 2, 2, 1), mode=mode) ** 3 * r), [x])
    (hv,) = gc.grad(gc.sum(dx * x), [x])
    assert {"pad", "pad_grad"} <= {n.op for n in gc.Graph([hv])}
    sampled_gradient_check(lambda x: gc.sum(gc.grad(gc.sum(
        gc.pad(x, (1, 2, 2, 1), mode=mode) ** 3 * r), [x])[0] * x), (x0,), samples=8,
        rtol=1e-5)


def test_constant_value_and_integer_inputs():
    xv = np.arange(12, dtype=np.int32).reshape(3, 4)
    x = gc.input("x", (3, 4), "int32")
    out = gc.compile([x], gc.pad(x, (1, 1, 2, 0), value=2.7), backend="numpy")(xv)
    np.testing.assert_array_equal(out, F.pad(torch.tensor(xv), (1, 1, 2, 0),
                                             value=2.7).numpy())
    assert out.dtype == np.int32
    refl = gc.compile([x], gc.pad(x, (2, 1), mode="reflect"), backend="numpy")(xv)
    np.testing.assert_array_equal(refl, np.pad(xv, ((0, 0), (2, 1)), mode="reflect"))


def test_symbolic_dims():
    x = gc.input("x", ("N", 2, "H", "W"), "float64")
    y = gc.pad(x, (1, 2, 2, 1), mode="reflect")
    assert str(y.shape[2]) == "H + 3" and str(y.shape[3]) == "W + 3"
    (dx,) = gc.grad(gc.sum(y * y), [x])
    fn = gc.compile([x], [y, dx], backend="numpy")
    for shape in [(1, 2, 3, 4), (2, 2, 5, 3)]:
        xv = np.random.default_rng(0).normal(size=shape)
        out, g = fn(xv)
        tx = torch.tensor(xv, requires_grad=True)
        ty = F.pad(tx, (1, 2, 2, 1), mode="reflect")
        (ty * ty).sum().backward()
        np.testing.assert_array_equal(out, ty.detach().numpy())
        np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-14)
    with pytest.raises(ValueError, match=r"pad: reflect padding \(2, 1\) of axis 2 must be "
                                         r"smaller than its size 2 \(shape \(1, 2, 2, 4\)\)"):
        fn(np.zeros((1, 2, 2, 4)))


def test_zero_pads_return_the_input_itself():
    x = gc.input("x", (2, 3))
    assert gc.pad(x, (0, 0)) is x and gc.pad(x, (), mode="reflect") is x


def _x(shape=(2, 3, 4, 5), dtype="float32"):
    return gc.input("x", shape, dtype)


HERE = r"\(at .*test_pad\.py:\d+\)"


@pytest.mark.parametrize("build,message", [
    (lambda: gc.pad(_x(), (1, 2, 3)), r"pad must have an even length \(before, after per "
                                      r"axis, last axis first\), got 3"),
    (lambda: gc.pad(_x(), (1,) * 10), r"pad \(1, 1, 1, 1, 1, 1, 1, 1, 1, 1\) covers 5 axes "
                                      r"of a rank-4 input"),
    (lambda: gc.pad(_x(), (1, 1.5)), r"pad must be a sequence of ints, got \(1, 1.5\)"),
    (lambda: gc.pad(_x(), 2), r"pad must be a sequence of ints, got 2"),
    (lambda: gc.pad(_x(), (1, 1), mode="wrap"), r"mode must be one of constant, reflect, "
                                                r"replicate, circular, got 'wrap'"),
    (lambda: gc.pad(_x(), (1, 1), mode="reflect", value=1.0),
     r"padding mode 'reflect' doesn't take a value \(got 1.0\)"),
    (lambda: gc.pad(_x(), (1, 1), value="a"), r"value must be a real number, got 'a'"),
    (lambda: gc.pad(_x(), (5, 0), mode="reflect"),
     r"reflect padding \(5, 0\) of axis 3 must be smaller than its size 5 \(shape "
     r"\(2, 3, 4, 5\)\)"),
    (lambda: gc.pad(_x(), (0, 6), mode="circular"),
     r"circular padding \(0, 6\) of axis 3 must be at most its size 5"),
    (lambda: gc.pad(_x((2, 3, 4, 0)), (1, 0), mode="replicate"),
     r"replicate padding needs a nonempty axis 3, got shape \(2, 3, 4, 0\)"),
    (lambda: gc.pad(_x(), (-3, -3)), r"pads \(-3, -3\) crop more than the size of axis 3 "
                                     r"\(shape \(2, 3, 4, 5\)\)"),
    (lambda: gc.pad(_x((2, "L")), (-1, 0)), r"negative pads \(-1, 0\) crop axis 1, whose "
                                           r"size L is symbolic"),
    (lambda: gc.pad(_x(dtype="int32"), (1, 0), value=float("inf")),
     r"value inf does not fit the int32 input"),
])
def test_build_errors(build, message):
    with pytest.raises((gc.GraphError, gc.GraphTypeError), match="pad: " + message + r".*" +
                       HERE):
        build()


def test_op_level_errors():
    x = _x()
    with pytest.raises(gc.GraphError, match=r"pad: pads must be a nonnegative \(before, "
                                            r"after\) pair per axis of the rank-4 input"):
        gc.Node.make("pad", (x,), pads=((0, 0), (0, 0), (-1, 0), (0, 0)), mode="constant",
                     value=0.0)
    with pytest.raises(gc.GraphError, match=r"pad_grad: g of shape \(2, 3, 4, 5\) is not the "
                                            r"padded shape \(2, 3, 5, 5\)"):
        gc.Node.make("pad_grad", (x,), pads=((0, 0), (0, 0), (1, 0), (0, 0)),
                     mode="reflect", shape=(2, 3, 4, 5))
