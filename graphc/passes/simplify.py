"""Algebraic simplification: local rewrites that remove work or give a stabler form.

Identities with a constant operand are found by sympy: the op's scalar expression with the
scalar constants substituted is simplified, and when it reduces to one of the other
operands (`x*1`, `1*x`, `x+0`, `x-0`, `x/1`, `x**1`, `where(c, x, x)`) the node becomes
that operand. NaN semantics decide the rest:

- `x*0 -> 0` (and any identity giving a number) is applied only to int and bool `x`: for
  floats NaN*0 and inf*0 are NaN, so the product is kept.
- an identity proposed by sympy is applied only if the op gives its operand back bit for
  bit on probe values (-0.0, +0.0, inf, -inf, NaN, ...): so `x-0`, `x*1`, `x/1` go, but
  float `x+0.0` stays (-0.0 + 0.0 is +0.0, and 1/x tells them apart); `x+(-0.0)` goes.
- `exp(log(x)) -> x` only where x is known nonnegative (for x < 0 the log is NaN).
- `log(exp(x)) -> x` always: it differs only where exp overflows (there the original
  gives inf, the rewrite the exact x).
- `-(-x) -> x`, `transpose(transpose(x))`, `reshape(reshape(x))`,
  `broadcast_to(broadcast_to(x))` and nested concats along one axis collapse; a transpose
  of a concat becomes a concat of transposes (the LLVM backend reads those by strides, so
  the data moves once); an elementwise operand `broadcast_to(y, s)`
  becomes `y` when NumPy broadcasting gives the same shape (scalars stay scalars).
- `log(softmax(z))` (as gc.softmax builds it) becomes the stable log_softmax form, and
  `1 / (1 + exp(-x))` becomes `sigmoid(x)`; `log(sigmoid(x))`, `log(1 - sigmoid(x))` and
  `log(1 + exp(x))` (binary cross-entropy's pieces) become the stable
  `-relu(-x) - log(1 + exp(-|x|))` forms, which do not overflow.
- The sum of slice gradients over adjacent ranges of one axis (the gradient of q, k, v
  sliced from one projection) becomes slice_grad of their concatenation (no zero-filled
  copies summed); the only difference is a -0.0 gradient, which stays -0.0 where the
  sum gave +0.0.
- `x > 0` (relu's gradient mask) reads `relu(x)` instead where the graph computes it:
  relu(x) > 0 exactly when x > 0 (NaN included), and x then often has relu as its one
  reader, which epilogue fusion folds into the conv/matmul producing x.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy

from graphc import dsl, dtypes
from graphc.ir.node import Node
from graphc.ir.op import get_op
from graphc.ir.program import Program
from graphc.ops.elementwise import Elementwise
from graphc.shapes import broadcast

from .rewrite import rebuild, rewrite, rewrite_to_fixed_point

_NONNEGATIVE_OPS = frozenset({"exp", "sigmoid", "relu", "abs", "sqrt"})


def _scalar_value(node: Node):
    """The Python number a size-1 constant holds, else None."""
    if node.op != "constant" or node.value.size != 1:
        return None
    return node.value.item()


def _scalar_number(value) -> sympy.Number:
    if isinstance(value, bool):
        return sympy.Integer(int(value))
    if isinstance(value, int) or float(value).is_integer():
        return sympy.Integer(int(value))  # 1.0 as 1, so sympy sees x*1.0 as x
    return sympy.Float(value)


def _nonnegative(node: Node) -> bool:
    if node.op in _NONNEGATIVE_OPS:
        return True
    if node.op == "mul" and node.inputs[0] is node.inputs[1]:
        return True
    return node.op == "constant" and bool(np.all(node.value >= 0))


def _nonpositive(node: Node) -> bool:
    return node.op == "neg" and _nonnegative(node.inputs[0])


def _is_number(node: Node, value: float) -> bool:
    return node.op == "constant" and node.value.size == 1 and node.value.item() == value


def _same_type(candidate: Node, node: Node) -> bool:
    return candidate.dtype == node.dtype and candidate.shape == node.shape


def _constant_identity(node: Node) -> Node | None:
    """The operand (or int constant) that `node` equals by sympy, given its constants."""
    constants = tuple((k, type(v), v) for k, i in enumerate(node.inputs)
                      if (v := _scalar_value(i)) is not None)
    if not constants:
        return None
    expr = _reduced(node.op, tuple(sorted(node.attrs.items())), len(node.inputs), constants)
    symbols = _symbols(len(node.inputs))
    for k, (s, x) in enumerate(zip(symbols, node.inputs)):
        if expr == s and _same_type(x, node) and _exact_on_special_values(node, k):
            return x
    exact = all(not dtypes.is_float(i.dtype) for i in node.inputs)
    if expr.is_Integer and exact:
        (c,) = dsl.operands(int(expr), reference=node.dtype)
        return dsl.broadcast_to(c, node.shape)
    return None


@functools.cache
def _symbols(arity: int) -> tuple[sympy.Symbol, ...]:
    return sympy.symbols(f"x0:{arity}", real=True)


@functools.lru_cache(maxsize=4096)
def _reduced(op: str, attrs: tuple, arity: int, constants: tuple) -> sympy.Basic:
    """An op's expression over symbols x0.. with its constant operands substituted
    (`constants`: (slot, type, value) triples). Cached: the substitution takes sympy
    a fraction of a millisecond, and a graph has thousands of ops with a scalar operand
    but few distinct ones."""
    symbols = _symbols(arity)
    numbers = {symbols[k]: _scalar_number(value) for k, _, value in constants}
    return get_op(op).expression(symbols, dict(attrs)).subs(numbers)


def _exact_on_special_values(node: Node, slot: int) -> bool:
    """Whether the node gives back its operand `slot` bit for bit (sign of zero, inf and
    NaN included) on probe values, its other operands being the constants they are."""
    x = node.inputs[slot]
    if dtypes.is_float(x.dtype):
        probe = np.array([-0.0, 0.0, np.inf, -np.inf, np.nan, 1.5, -2.5, 3e38], x.dtype)
    else:
        info = np.iinfo(x.dtype) if x.dtype != np.bool_ else None
        probe = np.array([0, 1] if info is None else [0, 1, -3 if info.min else 3, info.min,
                                                      info.max], x.dtype)  # uint8: no -3
    args = [probe if k == slot else i.value.reshape(()) for k, i in enumerate(node.inputs)]
    out = np.asarray(get_op(node.op).reference(*args, **node.attrs))
    return bool(out.dtype == probe.dtype and np.array_equal(out, probe, equal_nan=True)
                and np.array_equal(np.signbit(out), np.signbit(probe)))


def _stable_softplus(x: Node) -> Node:
    """log(1 + exp(x)) as relu(x) + log(1 + exp(-|x|)): never overflows."""
    return dsl.relu(x) + dsl.log(1.0 + dsl.exp(-dsl.abs(x)))


def _one_plus(node: Node) -> Node | None:
    """y if node is 1 + y (either order), else None."""
    if node.op != "add":
        return None
    a, b = node.inputs
    return b if _is_number(a, 1) else a if _is_number(b, 1) else None


def _log_rule(node: Node) -> Node | None:
    (x,) = node.inputs
    if x.op == "exp":
        return x.inputs[0]
    if x.op == "sigmoid":
        return -_stable_softplus(-x.inputs[0])
    if x.op == "sub" and _is_number(x.inputs[0], 1) and x.inputs[1].op == "sigmoid":
        return -_stable_softplus(x.inputs[1].inputs[0])
    inner = _one_plus(x)
    if inner is not None and inner.op == "exp" and not _nonpositive(inner.inputs[0]):
        return _stable_softplus(inner.inputs[0])
    if x.op == "div":
        e, s = x.inputs
        if (e.op == "exp" and s.op == "sum" and s.attrs["keepdims"] and s.inputs[0] is e):
            return e.inputs[0] - dsl.log(s)
    return None


def _elementwise_rule(node: Node) -> Node | None:
    found = _constant_identity(node)
    if found is not None:
        return found
    if node.op == "neg" and node.inputs[0].op == "neg":
        return node.inputs[0].inputs[0]
    if node.op == "exp" and node.inputs[0].op == "log" and _nonnegative(
            node.inputs[0].inputs[0]):
        return node.inputs[0].inputs[0]
    if node.op == "log":
        return _log_rule(node)
    if node.op == "div" and _is_number(node.inputs[0], 1):
        inner = _one_plus(node.inputs[1])
        if inner is not None and inner.op == "exp" and inner.inputs[0].op == "neg":
            return dsl.sigmoid(inner.inputs[0].inputs[0])
    return _unbroadcast_operands(node)


def _unbroadcast_operands(node: Node) -> Node | None:
    """Elementwise operands broadcast_to(y) replaced by y where broadcasting agrees."""
    inputs = list(node.inputs)
    changed = False
    for k, x in enumerate(inputs):
        if x.op != "broadcast_to":
            continue
        trial = inputs[:k] + [x.inputs[0]] + inputs[k + 1:]
        if broadcast(*(i.shape for i in trial)) == node.shape:
            inputs, changed = trial, True
    return rebuild(node, tuple(inputs)) if changed else None


def _shape_rule(node: Node) -> Node | None:
    (x,) = node.inputs
    if node.op == "transpose" and x.op == "transpose":
        axes = tuple(x.attrs["axes"][a] for a in node.attrs["axes"])
        return dsl.transpose(x.inputs[0], axes)
    if node.op == "transpose" and x.op == "concat":  # one copy: the parts read by strides
        axes = node.attrs["axes"]
        return dsl.concat([dsl.transpose(i, axes) for i in x.inputs],
                          axes.index(x.attrs["axis"]))
    if node.op == "reshape" and x.op == "reshape":
        return dsl.reshape(x.inputs[0], node.shape)
    if node.op == "reshape" and node.shape == x.shape:
        return x
    if node.op == "broadcast_to" and x.op == "broadcast_to":
        return dsl.broadcast_to(x.inputs[0], node.shape)
    return None


def _whole(entry, dim) -> bool:
    return tuple(entry) in ((0, dim, 1), (None, None, 1))


def _slab(node: Node) -> tuple[int, int, int] | None:
    """(axis, start, stop) when `node` is a slice_grad placing its gradient in one unit-step
    range of one axis, whole along the others."""
    if node.op != "slice_grad":
        return None
    partial = [(axis, entry) for axis, (entry, dim) in
               enumerate(zip(node.attrs["index"], node.shape)) if not _whole(entry, dim)]
    if len(partial) != 1:
        return None
    axis, (start, stop, step) = partial[0]
    return (axis, start, stop) if step == 1 and start is not None else None


def _slice_grad_sum(node: Node) -> Node | None:
    """slice_grad(a) + slice_grad(b) over adjacent ranges of one axis -> one slice_grad of
    concat(a, b), and a slice_grad of the whole shape -> its gradient. The gradient of
    slices that split a value (q, k, v of one projection) is then one concatenation, not
    zero-filled copies summed. Exact except for zeros' signs: -0.0 in a slice stays -0.0
    where the sum added the other slices' +0.0 to it."""
    a, b = node.inputs
    ends = _slab(a), _slab(b)
    if None in ends or a.attrs["shape"] != b.attrs["shape"] or a.dtype != b.dtype:
        return None
    (axis, a0, a1), (axis_b, b0, b1) = ends
    if axis != axis_b or (a1 != b0 and b1 != a0):
        return None
    first, second = (a, b) if a1 == b0 else (b, a)
    start, stop = min(a0, b0), max(a1, b1)
    joined = dsl.concat([first.inputs[0], second.inputs[0]], axis)
    index = list(a.attrs["index"])
    index[axis] = (start, stop, 1)
    if _whole(index[axis], node.shape[axis]):
        return joined
    return Node.make("slice_grad", (joined,), shape=a.attrs["shape"], index=tuple(index))


def _concat_rule(node: Node) -> Node | None:
    """concat(.., concat(x, y), ..) along one axis -> one concat."""
    axis = node.attrs["axis"]
    if not any(i.op == "concat" and i.attrs["axis"] == axis for i in node.inputs):
        return None
    flat = []
    for i in node.inputs:
        flat.extend(i.inputs if i.op == "concat" and i.attrs["axis"] == axis else [i])
    return dsl.concat(flat, axis)


def _rule(node: Node) -> Node | None:
    """A simpler node computing `node`, or None."""
    if node.op == "add" and (joined := _slice_grad_sum(node)) is not None:
        return joined
    if isinstance(get_op(node.op), Elementwise):
        return _elementwise_rule(node)
    if node.op == "concat":
        return _concat_rule(node)
    if node.op in ("transpose", "reshape", "broadcast_to"):
        return _shape_rule(node)
    return None


def _simpler(node: Node) -> Node:
    """The simpler node computing `node` (of its dtype and shape), else `node`."""
    found = _rule(node)
    if found is None or not _same_type(found, node):
        return node
    return found


def _positive_via_relu(program: Program) -> Program:
    """`x > 0` and `0 < x` compare `relu(x)` where the graph computes relu(x) anyway."""
    relus = {n.inputs[0]: n for n in program.graph.nodes if n.op == "relu"}

    def rule(node: Node, inputs: tuple[Node, ...]) -> Node:
        node = rebuild(node, inputs)
        if node.op in ("greater", "less"):
            x, zero = node.inputs if node.op == "greater" else node.inputs[::-1]
            if x in relus and _is_number(zero, 0):
                pair = (relus[x], zero) if node.op == "greater" else (zero, relus[x])
                return rebuild(node, pair)
        return node

    return rewrite(program, rule)


def simplify(program: Program) -> Program:
    # Each round of the fixed point visits every node again; a node a round left as it
    # was gets the answer it got then (the rules read nothing but the node's subgraph).
    simpler: dict[Node, Node] = {}

    def rule(node: Node, inputs: tuple[Node, ...]) -> Node:
        node = rebuild(node, inputs)
        if node not in simpler:
            simpler[node] = _simpler(node)
        return simpler[node]

    return _positive_via_relu(rewrite_to_fixed_point(program, rule))
