"""Turning a tree of elementwise nodes into one unevaluated sympy expression: the body of
a fused kernel (graphc/ops/fused.py gives the format). Shared by the fusion passes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import sympy

from graphc.ir.node import Node
from graphc.ops.elementwise import Elementwise
from graphc.ops.fused import input_symbols
from graphc.ops.registry import get_op
from graphc.shapes import broadcast


def fusable(node: Node) -> bool:
    """Whether a node can be part of a fused elementwise kernel: any elementwise op, but
    a cast only from bool (other casts round or truncate, which an expression cannot say)."""
    if not isinstance(get_op(node.op), Elementwise):
        return False
    return node.op != "cast" or node.inputs[0].dtype == np.bool_


_PIECEWISE_OPS = frozenset({"equal", "not_equal", "less", "less_equal", "greater",
                            "greater_equal", "where", "clip", "leaky_relu", "cast"})
_COMPARING_OPS = frozenset({"equal", "not_equal", "less", "less_equal", "greater",
                            "greater_equal", "clip", "leaky_relu"})


def joins(producer: Node, consumer: Node) -> bool:
    """Whether a fusable producer may be computed inside its consumer's expression.

    Not when a Piecewise value would land inside a relational (sympy rewrites such
    conditions, slowly and not always successfully), nor a bool that is not a comparison
    (a condition is a comparison's relational itself)."""
    if producer.op in _PIECEWISE_OPS and consumer.op in _COMPARING_OPS:
        return False
    return producer.dtype != np.bool_ or producer.op in _COMPARING_OPS - {"clip", "leaky_relu"}


def _truth(expr: sympy.Basic) -> sympy.Basic:
    """The condition a bool expression holds on: a comparison's relational, else expr != 0."""
    if (isinstance(expr, sympy.Piecewise) and len(expr.args) == 2 and expr.args[0].expr == 1
            and expr.args[1].expr == 0 and expr.args[1].cond == sympy.true):
        return expr.args[0].cond
    return sympy.Ne(expr, 0)


def _expression(node: Node, args: tuple) -> sympy.Basic:
    if node.op == "where":
        condition, a, b = args
        return sympy.Piecewise((a, _truth(condition)), (b, True))
    return get_op(node.op).expression(args, node.attrs)


def _inline_number(x: Node, consumer: Node):
    """A size-1 finite constant as a sympy number, when a weak scalar gives the consumer
    the same dtype (all its other value operands have the constant's dtype); else None."""
    if x.op != "constant" or x.value.size != 1 or not np.isfinite(x.value).all():
        return None
    values = consumer.inputs[1:] if consumer.op == "where" else consumer.inputs
    if any(v.dtype != x.dtype for v in values if v is not x):
        return None
    value = x.value.item()
    if isinstance(value, (bool, int)):
        return sympy.Integer(int(value))
    return sympy.Float(value)


class Expression:
    """The expression of `members` (elementwise nodes in topological order, the last one
    the root), with operands outside the tree as symbols x0, x1, ... An outside operand
    is `outside(node)`; broadcast_to operands are absorbed (the kernel broadcasts)."""

    def __init__(self, members: Sequence[Node], outside: Callable[[Node], Node] = lambda n: n):
        self.root = members[-1]
        self.operands: list[Node] = []
        symbol_of: dict[Node, sympy.Symbol] = {}
        inside = set(members)
        exprs: dict[Node, sympy.Basic] = {}
        with sympy.evaluate(False):
            for member in members:
                args = []
                for i in member.inputs:
                    if i in inside:
                        args.append(exprs[i])
                        continue
                    x = outside(i)
                    number = _inline_number(x, member)
                    if number is not None:
                        args.append(number)
                        continue
                    if x.op == "broadcast_to":
                        x = x.inputs[0]
                    if x not in symbol_of:
                        symbol_of[x] = input_symbols(len(self.operands) + 1)[-1]
                        self.operands.append(x)
                    args.append(symbol_of[x])
                exprs[member] = _expression(member, tuple(args))
        self.expr = exprs[self.root]

    def shape_attrs(self) -> dict:
        """{"shape": root shape} when the operands alone broadcast to something smaller."""
        if self.operands and broadcast(*(o.shape for o in self.operands)) == self.root.shape:
            return {}
        return {"shape": self.root.shape}
