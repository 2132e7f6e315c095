"""Gradients of elementwise ops, derived by sympy from each op's scalar expression."""

from __future__ import annotations

import functools

import sympy

from graphc import dtypes
from graphc.autodiff.broadcast import unbroadcast
from graphc.autodiff.sympy_graph import to_graph
from graphc.ir.node import Node
from graphc.ops.registry import get_op


@functools.cache
def derivatives(op_name: str, attrs: tuple, arity: int):
    """(symbols, expression, [d expression / d symbol_i]) for an op with given attrs."""
    symbols = sympy.symbols(f"x0:{arity}", real=True)
    op = get_op(op_name)
    return symbols, op.expression(symbols, dict(attrs)), op.partials(symbols, dict(attrs))


def leaves_the_reals(expr: sympy.Basic) -> bool:
    """Whether sympy evaluated part of `expr` outside the real numbers (log of a negative
    number: I; 1/0 or log(0): zoo; 0 * oo: nan), where IEEE arithmetic on the graph gives a
    real, infinite or NaN value instead."""
    return expr.has(sympy.I, sympy.zoo, sympy.nan) or any(
        a.is_extended_real is False for a in expr.atoms(sympy.Number))


def _with_numbers(partial: sympy.Basic, numbers: dict) -> sympy.Basic | None:
    """The partial with the scalar constants substituted (so x**2 differentiates to 2*x),
    or None where sympy's evaluation of it leaves the reals: then the constants stay graph
    values and the graph computes the value in IEEE arithmetic (NaN for log(-2), inf for
    1/0)."""
    substituted = partial.subs(numbers)
    return None if leaves_the_reals(substituted) else substituted


def _scalar_constant(node: Node):
    """The sympy number of a shape-() constant (so x**2 differentiates to 2*x), else None."""
    if node.op != "constant" or node.shape != ():
        return None
    value = node.value.item()
    return sympy.Integer(value) if isinstance(value, (int, bool)) else sympy.Float(value, 17)


def elementwise_grad(node: Node, out_grad: Node) -> list[Node | None]:
    symbols, expr, partials = derivatives(node.op, tuple(sorted(node.attrs.items())),
                                          len(node.inputs))
    numbers = {s: n for s, i in zip(symbols, node.inputs)
               if (n := _scalar_constant(i)) is not None}
    grads: list[Node | None] = []
    for x, partial in zip(node.inputs, partials):
        if not dtypes.is_float(x.dtype) or x.op == "constant":
            grads.append(None)
            continue
        substituted = _with_numbers(partial, numbers) if numbers else partial
        if substituted is None:  # keep every operand a graph value
            partial, bound = partial, dict(zip(symbols, node.inputs))
        else:
            partial = substituted
            bound = {s: i for s, i in zip(symbols, node.inputs) if s not in numbers}
        if partial == 0:
            g = out_grad * 0.0
        elif partial == 1:
            g = out_grad
        elif partial == -1:
            g = -out_grad
        else:
            forward = expr if substituted is None else expr.subs(numbers)
            g = out_grad * to_graph(partial, {**bound, forward: node}, node.dtype)
        grads.append(unbroadcast(g, x.shape) if g.shape != x.shape else g)
    return grads
