"""Every differentiable elementwise op's gradient over several shapes, broadcasting included,
against central finite differences (float64)."""

import numpy as np
import pytest

import graphc as gc
from graphc.ops import all_ops
from graphc.ops.elementwise import Elementwise
from tests.ops.harness import Case, In, gradient_check

UNARY_SHAPES = [(), (5,), (2, 3, 2)]
BINARY_SHAPES = [((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((), (2, 3)), ((3, 1), (1, 3))]
POSITIVE = {"log", "sqrt", "pow", "log1p", "rsqrt"}  # domains: inputs drawn from (0.5, 2)
UNIT = {"asin", "acos"}  # inputs drawn from (0.05, 0.95)
BUILDERS = {"leaky_relu": lambda x: gc.leaky_relu(x, 0.2), "clip": lambda x: gc.clip(x, -0.5, 0.5),
            "gelu_tanh": lambda x: gc.gelu(x, approximate="tanh"),
            "elu": lambda x: gc.elu(x, 0.5), "celu": lambda x: gc.celu(x, 2.0),
            "softplus": lambda x: gc.softplus(x, beta=2.0, threshold=3.0),
            "hardtanh": lambda x: gc.hardtanh(x, -0.5, 0.5),
            # typed ops carry their dtype: their builders give it
            "floor_divide": gc.floor_divide, "remainder": gc.remainder,
            "trunc_divide": lambda a, b: gc.div(a, b, rounding_mode="trunc")}


def _kind(name):
    return "positive" if name in POSITIVE else "unit" if name in UNIT else "normal"


def _differentiable_elementwise(arity):
    return sorted(name for name, op in all_ops().items()
                  if isinstance(op, Elementwise) and op.differentiable and op.arity == arity
                  and op.dtype_rule not in ("cast", "where"))


def _build(name):
    if name in BUILDERS:
        return BUILDERS[name]
    return lambda *xs: gc.Node.make(name, xs)


UNARY = [(name, shape) for name in _differentiable_elementwise(1) for shape in UNARY_SHAPES]
BINARY = [(name, shapes) for name in _differentiable_elementwise(2) for shapes in BINARY_SHAPES]


@pytest.mark.parametrize("name, shape", UNARY, ids=[f"{n}-{s}" for n, s in UNARY])
def test_unary_gradient(name, shape):
    case = Case(name, _build(name), (In(shape, kind=_kind(name)),), None)
    for analytic, numeric in zip(*gradient_check(case, seed=len(shape))):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name, shapes", BINARY, ids=[f"{n}-{s}" for n, s in BINARY])
def test_binary_gradient_with_broadcasting(name, shapes):
    case = Case(name, _build(name), tuple(In(s, kind=_kind(name)) for s in shapes), None)
    analytic, numeric = gradient_check(case, seed=3)
    assert [a.shape for a in analytic] == list(shapes)
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-7)


def test_the_sweep_covers_the_table():
    assert len(_differentiable_elementwise(1)) >= 14 and len(_differentiable_elementwise(2)) >= 7
