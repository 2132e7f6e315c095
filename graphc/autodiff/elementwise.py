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
    expr = get_op(op_name).expression(symbols, dict(attrs))
    return symbols, expr, [sympy.diff(expr, s) for s in symbols]


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
    env = {s: i for s, i in zip(symbols, node.inputs) if s not in numbers}
    grads: list[Node | None] = []
    for x, partial in zip(node.inputs, partials):
        if not dtypes.is_float(x.dtype) or x.op == "constant":
            grads.append(None)
            continue
        partial = partial.subs(numbers) if numbers else partial
        if partial == 0:
            local = None
        else:
            local = to_graph(partial, {**env, expr.subs(numbers): node}, node.dtype)
        if local is None:
            g = out_grad * 0.0
        elif partial == 1:
            g = out_grad
        elif partial == -1:
            g = -out_grad
        else:
            g = out_grad * local
        grads.append(unbroadcast(g, x.shape) if g.shape != x.shape else g)
    return grads
