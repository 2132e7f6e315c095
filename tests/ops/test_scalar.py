"""The scalar-expression language: every head of its grammar has every interpreter (NumPy
evaluation, graph building, a derivative, LLVM emission), and the interpreters agree."""

from __future__ import annotations

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
