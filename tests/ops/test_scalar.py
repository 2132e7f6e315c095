"""The scalar-expression language: every head of its grammar has every interpreter (NumPy
evaluation, graph building, a derivative, LLVM emission), and the interpreters agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.backends.llvm.codegen.expr import RULES
from graphc.ir.op import Pattern
from graphc.ops import scalar
from graphc.ops.scalar import GRAMMAR, STRUCTURE, evaluate, input_symbols, to_graph

x0, x1, x2 = input_symbols(3)


def _example(name: str) -> sympy.Basic:
    """An expression whose top is the head `name`, over x0 (and x1, x2)."""
    with sympy.evaluate(False):
        structures = {
            "number": sympy.Float(1.5) + x0, "symbol": x0 + 0,
            "add": x0 + x1, "mul": x0 * x1, "pow": x0 ** 3,
            "piecewise": scalar.piecewise((x0, x0 > x1), (x1, True)),
        }
        if name in structures:
            return structures[name]
        heads = {v: k for k, v in GRAMMAR.items()}  # a typed function: its last dtype's
        head = heads[name]
        if name.startswith("logical_"):
            args = (x0 > 0, x1 > 0)[:1 if name == "logical_not" else 2]
            return scalar.piecewise((1, head(*args)), (0, True))
        if name in ("greater", "greater_equal", "less", "less_equal", "equal", "not_equal"):
            return scalar.piecewise((1, head(x0, x1)), (0, True))
        if name in BINARY:
            return head(x0, x1)
        return head(x0)


BINARY = {"maximum", "minimum", "atan2", "copysign", "floor_divide", "trunc_divide",
          "remainder", "bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"}


NAMES = sorted(set(GRAMMAR.values()) | set(STRUCTURE))


def test_every_head_has_an_llvm_rule():
    structure_only = {"number", "symbol"}  # emitted before any rule is looked up
    assert set(GRAMMAR.values()) | (set(STRUCTURE) - structure_only) <= set(RULES)


def test_every_function_head_is_an_elementwise_op():
    for name in set(GRAMMAR.values()) - set(STRUCTURE):
        assert gc.ops.get_op(name).pattern is Pattern.ELEMENTWISE, name


@pytest.mark.parametrize("name", NAMES)
def test_every_head_evaluates_builds_differentiates_and_compiles_alike(name):
    expr = _example(name)
    rng = np.random.default_rng(0)
    values = {s: rng.normal(size=6) for s in (x0, x1, x2)}
    expected = evaluate(expr, values, np.dtype("float64"))
    inputs = [gc.input(str(s), (6,), "float64") for s in (x0, x1, x2)]
    node = to_graph(expr, dict(zip((x0, x1, x2), inputs)), np.dtype("float64"))
    arrays = [values[s] for s in (x0, x1, x2)]
    for backend in ("numpy", "llvm"):
        f = gc.compile(inputs, node, backend=backend)
        np.testing.assert_allclose(f(*arrays), np.broadcast_to(expected, (6,)), rtol=1e-12,
                                   err_msg=f"{name} on {backend}")
    for s in (x0, x1):
        partial = sympy.diff(expr, s)
        assert not scalar.leaves_the_reals(partial)
        to_graph(partial, dict(zip((x0, x1, x2), inputs)), np.dtype("float64"))


TYPED = sorted(scalar.typed_classes(), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", TYPED, ids=[c.__name__ for c in TYPED])
def test_every_typed_function_computes_in_its_own_dtype_inside_a_float_kernel(cls):
    """A typed function of float64 values (ints, and the edges of its dtype) converts them
    to its dtype, computes there and converts back, in every interpreter alike: the
    evaluator, the graph builder (casts around the op) and the LLVM emitter."""
    own = cls.dtype
    if own.kind == "f":
        a, b = np.array([7.5, -7.5, 3.0, 0.0, -2.0, 1e3]), np.array([2.0, 2.0, 0.0, 3.0, 0.5, -7.0])
    else:
        info = np.iinfo(own)
        a = np.array([info.min, info.max, -7 if info.min else 7, 5, 0, 100], np.float64)
        b = np.array([-1 if info.min else 1, 3, 2, 0, 9, 1], np.float64)
    with sympy.evaluate(False):
        expr = cls(*(x0, x1)[:1 if cls.__name__.startswith("BitwiseNot") else 2]) * 0.5
    expected = evaluate(expr, {x0: a, x1: b}, np.dtype("float64"))
    inputs = [gc.input(str(s), (6,), "float64") for s in (x0, x1)]
    node = to_graph(expr, dict(zip((x0, x1), inputs)), np.dtype("float64"))
    assert node.dtype == np.float64
    with np.errstate(all="ignore"):
        own_a, own_b = a.astype(own), b.astype(own)
        reference = gc.ops.get_op(GRAMMAR[cls]).reference
        direct = np.asarray(reference(own_a) if cls.__name__.startswith("BitwiseNot")
                            else reference(own_a, own_b)).astype(np.float64) * 0.5
    np.testing.assert_array_equal(expected, direct)
    for backend in ("numpy", "llvm"):
        f = gc.compile(inputs, node, backend=backend)
        np.testing.assert_array_equal(f(a, b), expected, err_msg=backend)


def test_the_gelu_gradient_multiplies_by_its_constants():
    """d/dx gelu = Phi(x) + x phi(x) with 1/sqrt(2) and 1/sqrt(2 pi) as factors: a
    constant divisor would cost every vector of the gradient a division (the GEMM
    epilogue of a Transformer's MLP backward), and the value is the derivative's."""
    x = sympy.Symbol("x")
    d = scalar.Gelu(x).diff(x)
    assert not any(p.exp.is_negative for p in d.atoms(sympy.Pow))
    for value in (-3.0, -0.5, 0.0, 0.7, 2.5):
        phi = math.exp(-value * value / 2) / math.sqrt(2 * math.pi)
        exact = 0.5 * (1 + math.erf(value / math.sqrt(2))) + value * phi
        assert float(d.subs(x, value)) == pytest.approx(exact, rel=1e-15, abs=1e-15)
