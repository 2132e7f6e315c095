"""The elementwise math of graphc/ops/functions.py against PyTorch and NumPy on the values
where conventions show: halves (round to even), signed zeros, infinities and NaN, ints
(roundings keep them, float functions give float64), isclose's rules, the gradients'
conventions, and refused arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc as gc
from graphc.errors import GraphError, GraphTypeError

BACKENDS = ["numpy", "llvm"]
SPECIAL = np.array([-2.5, -1.5, -0.5, -0.0, 0.0, 0.5, 1.5, 2.5, 0.49999999999999994, -3.7,
                    3.7, 1e300, -1e-300, np.inf, -np.inf, np.nan])


def _run(fn, backend, *arrays):
    xs = [gc.input(f"x{i}", a.shape, a.dtype.name) for i, a in enumerate(arrays)]
    return gc.compile(xs, fn(*xs), backend=backend)(*arrays)


def _same(got, expected):
    """Equal, NaN where NaN, and zeros of the same sign."""
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    signed = ~np.isnan(expected) if expected.dtype.kind == "f" else slice(None)
    np.testing.assert_array_equal(np.signbit(got[signed]), np.signbit(expected[signed]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "isnan", "isinf",
                                  "isfinite", "square", "reciprocal", "rsqrt", "log1p",
                                  "expm1", "tan"])
def test_special_values_as_pytorch(name, dtype, backend):
    with np.errstate(over="ignore"):  # 1e300 is inf in float32
        values = SPECIAL.astype(dtype)
    got = _run(getattr(gc, name), backend, values)
    expected = getattr(torch, name)(torch.from_numpy(values)).numpy()
    if name in ("rsqrt", "tan", "log1p", "expm1"):  # not exactly rounded alike everywhere
        finite = np.isfinite(expected) & (expected != 0)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=4 * np.finfo(dtype).eps)
        _same(got[~finite], expected[~finite])
    else:
        _same(got, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "int64"])
def test_ints_stay_ints_where_pytorch_keeps_them(dtype, backend):
    info = np.iinfo(dtype)
    values = np.array([info.min, -3 if info.min else 3, 1, 7, info.max], dtype)
    got = _run(lambda x: [gc.floor(x), gc.ceil(x), gc.round(x), gc.trunc(x), gc.isnan(x),
                          gc.isfinite(x), gc.square(x), gc.reciprocal(x)], backend, values)
    with np.errstate(divide="ignore"):  # uint8's 0: 1 / 0 is inf
        expected = [values] * 4 + [np.zeros(5, bool), np.ones(5, bool),
                                   np.square(values),  # wraps, as NumPy
                                   1 / values.astype(np.float64)]
    for g, e in zip(got, expected, strict=True):
        _same(g, e)


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_with_decimals_as_pytorch(backend):
    values = np.array([1.005, 2.675, -0.125, 0.375, 1234.5678, -98.765, 15.0, 25.0])
    for decimals in (2, 1, -1):
        got = _run(lambda x, d=decimals: gc.round(x, d), backend, values)
        expected = torch.round(torch.from_numpy(values), decimals=decimals).numpy()
        _same(got, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_copysign_and_atan2_take_the_sign_bit(backend):
    x = np.array([1.0, -2.0, 0.0, -0.0, np.inf, np.nan, 3.0, 0.0])
    y = np.array([-0.0, 0.0, -1.0, 5.0, -np.inf, -1.0, np.nan, -0.0])
    _same(_run(gc.copysign, backend, x, y), np.copysign(x, y))
    _same(_run(gc.atan2, backend, y, x), torch.atan2(torch.from_numpy(y),
                                                     torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("backend", BACKENDS)
def test_isclose_as_pytorch(backend):
    a = np.array([1.0, 1.0, np.inf, np.inf, -np.inf, np.nan, np.nan, 1e-9, 0.0, 100.0])
    b = np.array([1.0 + 1e-6, 1.1, np.inf, -np.inf, 1.0, np.nan, 1.0, 0.0, 1e-7, 100.001])
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    for kwargs in ({}, {"equal_nan": True}, {"rtol": 0.2, "atol": 0.0}, {"atol": 1e-6}):
        got = _run(lambda p, q, k=kwargs: gc.isclose(p, q, **k), backend, a, b)
        _same(got, torch.isclose(ta, tb, **kwargs).numpy())
    ints = np.array([3, 5, -7]), np.array([3, 6, -7])
    _same(_run(lambda p, q: gc.isclose(p, q, atol=1), backend, *ints),
          torch.isclose(torch.from_numpy(ints[0]), torch.from_numpy(ints[1]), atol=1).numpy())


def test_gradients_follow_pytorch():
    """Roundings 0; copysign sign(x) * sign(y) and 0 at x = 0; atan2 0 at the origin."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=20), [0.0, -0.0, 2.0]])
    y = np.concatenate([rng.normal(size=20), [0.0, -3.0, 0.0]])
    xs = [gc.input("x", x.shape, "float64"), gc.input("y", y.shape, "float64")]
    for name in ("floor", "ceil", "round", "trunc", "square", "rsqrt", "reciprocal", "log1p",
                 "expm1", "tan", "sinh", "cosh", "atan"):
        (got,) = gc.compile(xs[:1], gc.grad(gc.sum(getattr(gc, name)(xs[0])), xs[:1]))(x)
        t = torch.from_numpy(x).requires_grad_()
        (expected,) = torch.autograd.grad(getattr(torch, name)(t).sum(), [t])
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-13, err_msg=name)
    for name in ("copysign", "atan2"):
        got = gc.compile(xs, gc.grad(gc.sum(getattr(gc, name)(*xs)), xs))(x, y)
        tx, ty = (torch.from_numpy(v).requires_grad_() for v in (x, y))
        expected = torch.autograd.grad(getattr(torch, name)(tx, ty).sum(), [tx, ty])
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-13, err_msg=name)


def test_asin_acos_gradients_inside_the_unit_interval():
    values = np.linspace(-0.99, 0.99, 41)
    x = gc.input("x", values.shape, "float64")
    for name in ("asin", "acos"):
        (got,) = gc.compile([x], gc.grad(gc.sum(getattr(gc, name)(x)), [x]))(values)
        t = torch.from_numpy(values).requires_grad_()
        (expected,) = torch.autograd.grad(getattr(torch, name)(t).sum(), [t])
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-13)


def test_refused_arguments_name_the_op_and_the_line():
    x = gc.input("x", (3,), "float32")
    with pytest.raises(GraphError, match=r"isclose: rtol must be a number >= 0, got -1 "
                                         r"\(at .*test_functions.py:\d+\)"):
        gc.isclose(x, x, rtol=-1)
    with pytest.raises(GraphError, match="isclose: equal_nan must be a bool"):
        gc.isclose(x, x, equal_nan=1)
    with pytest.raises(GraphError, match="round: decimals must be an int, got 1.5"):
        gc.round(x, 1.5)
    with pytest.raises(GraphTypeError, match="round: decimals=2 needs a float input, got int32"):
        gc.round(gc.input("n", (3,), "int32"), 2)
    with pytest.raises(GraphTypeError, match="logical_xor: takes bool inputs"):
        gc.logical_xor(x, x)
    with pytest.raises(GraphTypeError, match=r"log1p: cannot use str 'x' as a graph value "
                                             r"\(at .*test_functions.py"):
        gc.log1p("x")
    with pytest.raises(GraphTypeError, match="floor: does not take bool inputs"):
        gc.floor(gc.input("b", (3,), "bool"))
