"""Turning a tree of elementwise nodes into one unevaluated sympy expression: the body of
a fused kernel (graphc/ops/fused.py gives the format). Shared by the fusion passes."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence

import numpy as np
import sympy

from graphc.ir.node import Node
from graphc.ops import scalar
from graphc.ops.elementwise import Elementwise
from graphc.ops.fused import input_symbols
from graphc.ops.registry import get_op
from graphc.shapes import broadcast


def fusable(node: Node) -> bool:
    """Whether a node can be part of a fused elementwise kernel: any elementwise op, but
    a cast only from bool (other casts round or truncate, which an expression cannot say),
    and no int op with float coefficients (leaky_relu, clip of ints: it truncates too)."""
    if not isinstance(get_op(node.op), Elementwise):
        return False
    if node.op == "cast":
        return node.inputs[0].dtype == np.bool_
    attrs = tuple(sorted(node.attrs.items()))
    return node.dtype.kind not in "iu" or not _has_floats(node.op, attrs, len(node.inputs))


@functools.cache
def _has_floats(op: str, attrs: tuple, arity: int) -> bool:
    expr = get_op(op).expression(input_symbols(arity), dict(attrs))
    return any(a.is_Float for a in expr.atoms(sympy.Number))


@functools.cache
def _shape_of_expression(op: str, attrs: tuple, arity: int) -> tuple[bool, frozenset[int]]:
    """(whether the op's expression is a Piecewise, the operand slots that appear inside a
    relational of it) for an op with given attrs."""
    symbols = input_symbols(arity)
    expr = get_op(op).expression(symbols, dict(attrs))
    relations = expr.atoms(sympy.core.relational.Relational)
    return (isinstance(expr, sympy.Piecewise),
            frozenset(k for k, s in enumerate(symbols) if any(r.has(s) for r in relations)))


def _traits(node: Node) -> tuple[bool, frozenset[int]]:
    return _shape_of_expression(node.op, tuple(sorted(node.attrs.items())), len(node.inputs))


# Levels a fused kernel's expression may have (sympy's tree, ops' expressions expanded).
# sympy walks expressions recursively (printing needs ~3.3 frames a level), so a bound
# keeps every kernel far from Python's recursion limit however long a chain of ops is;
# fused kernels of ordinary models are far shallower (a chain cut at the bound stores one
# value per MAX_DEPTH levels).
MAX_DEPTH = 64


def expression_depth(expr: sympy.Basic) -> int:
    """The levels of a sympy expression tree: 0 for a symbol or a number (iterative)."""
    deepest, stack = 0, [(expr, 0)]
    while stack:
        e, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((a, d + 1) for a in e.args)
    return deepest


@functools.cache
def _op_depth(op: str, attrs: tuple, arity: int) -> int:
    return expression_depth(_op_expression(op, dict(attrs), input_symbols(arity)))


def op_depth(node: Node) -> int:
    """The levels a fusable node adds to the expression its operands are inlined into."""
    return _op_depth(node.op, tuple(sorted(node.attrs.items())), len(node.inputs))


_PIECEWISE_CONE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _piecewise_cone(node: Node) -> bool:
    """Whether a Piecewise could be in the node's expression once its fusable producers
    are inlined: the node or any fusable producer of it (transitively) is a Piecewise."""
    stack = [node]
    while stack:
        top = stack[-1]
        if top in _PIECEWISE_CONE:
            stack.pop()
            continue
        pending = [i for i in top.inputs if fusable(i) and i not in _PIECEWISE_CONE]
        if pending:
            stack += pending
            continue
        stack.pop()
        _PIECEWISE_CONE[top] = fusable(top) and (_traits(top)[0] or any(
            _PIECEWISE_CONE[i] for i in top.inputs if fusable(i)))
    return _PIECEWISE_CONE[node]


def joins(producer: Node, consumer: Node) -> bool:
    """Whether a fusable producer may be computed inside its consumer's expression.

    Not when a Piecewise could land inside a relational of the consumer (sympy rewrites
    such conditions, slowly and not always successfully; a where's condition is the
    exception: it takes a comparison's relational itself), nor a bool that is not a
    comparison's."""
    is_piecewise, _ = _traits(producer)
    if producer.dtype == np.bool_ and not (is_piecewise and producer.op in _COMPARISONS):
        return False
    slots = {k for k, i in enumerate(consumer.inputs) if i is producer}
    if consumer.op == "where" and 0 in slots:
        return slots == {0} and producer.op in _COMPARISONS and not any(
            _piecewise_cone(i) for i in producer.inputs if fusable(i))
    return not (slots & _traits(consumer)[1] and _piecewise_cone(producer))


_COMPARISONS = frozenset({"equal", "not_equal", "less", "less_equal", "greater",
                          "greater_equal"})


def _truth(expr: sympy.Basic) -> sympy.Basic:
    """The condition a bool expression holds on: a comparison's relational, else expr != 0."""
    if (isinstance(expr, sympy.Piecewise) and len(expr.args) == 2 and expr.args[0].expr == 1
            and expr.args[1].expr == 0 and expr.args[1].cond == sympy.true):
        return expr.args[0].cond
    return sympy.Ne(expr, 0)


def _op_expression(op: str, attrs: dict, args: Sequence) -> sympy.Basic:
    if op == "where":
        condition, a, b = args
        return scalar.piecewise((a, _truth(condition)), (b, True))
    return get_op(op).expression(args, attrs)


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
                exprs[member] = _op_expression(member.op, member.attrs, tuple(args))
        self.expr = exprs[self.root]

    def shape_attrs(self) -> dict:
        """{"shape": root shape} when the operands alone broadcast to something smaller."""
        if self.operands and broadcast(*(o.shape for o in self.operands)) == self.root.shape:
            return {}
        return {"shape": self.root.shape}
