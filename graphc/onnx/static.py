"""Values known at import: constants, integer initializers, and what is computed from them
alone, shapes included. A shape may hold symbolic dims (the batch N): such a value is a
NumPy object array of ints and sympy expressions, on which Shape, Gather, Concat, Slice
and the arithmetic of shape subgraphs run as on numbers (graphc/onnx/converters declare
how, as `fold`). A value used as data becomes a graph constant (or, for a symbolic dim,
a `dim_value` node, bound per call)."""

from __future__ import annotations

import numpy as np
import sympy

from graphc import dtypes
from graphc.ir.node import Node
from graphc.ir.op import Env, get_op
from graphc.onnx.errors import Unsupported
from graphc.ops.leaf import constant
from graphc.shapes import Dim, as_dim, is_static

# Ops whose value is not a function of their inputs alone: never evaluated at import.
_NOT_FOLDED = frozenset({"input", "param", "dim_value", "random_uniform"})


def is_symbolic(array: np.ndarray) -> bool:
    """Whether a static value holds symbolic dims (an object array)."""
    return array.dtype == object


def canonical(array) -> np.ndarray:
    """A static value in its plainest form: an object array whose entries are all numbers
    becomes an int64 array; sympy integers become ints."""
    array = np.asarray(array)
    if array.dtype != object:
        return array
    flat = [int(v) if isinstance(v, (int, np.integer, sympy.Integer)) else v
            for v in array.reshape(-1)]
    if all(isinstance(v, int) for v in flat):
        return np.array(flat, dtype=np.int64).reshape(array.shape)
    out = np.empty(len(flat), dtype=object)
    out[:] = [v if isinstance(v, int) else sympy.sympify(v) for v in flat]
    return out.reshape(array.shape)


def shape_array(shape) -> np.ndarray:
    """A (possibly symbolic) shape as a static int64 value (an object array if symbolic)."""
    if is_static(shape):
        return np.array(shape, dtype=np.int64)
    out = np.empty(len(shape), dtype=object)
    out[:] = list(shape)
    return out


def as_dims(array: np.ndarray) -> tuple[Dim, ...]:
    """A 1-D static int value as dims (ints, or sympy expressions of symbolic dims)."""
    return tuple(int(v) if isinstance(v, (int, np.integer, sympy.Integer)) else as_dim(v)
                 for v in np.asarray(array).reshape(-1))


def materialize(array: np.ndarray) -> Node:
    """A static value as a graph value: a constant, or for symbolic dims `dim_value` nodes
    (each bound per call) gathered into the array's shape."""
    if not is_symbolic(array):
        try:
            dtypes.as_dtype(array.dtype)
        except TypeError:
            raise Unsupported(f"a constant of dtype {array.dtype} (graphc supports "
                              f"{', '.join(d.name for d in dtypes.SUPPORTED)})") from None
        return constant(array)
    from graphc.ops.shape import concat, reshape

    parts = [constant(np.int64(v)) if isinstance(v, int)
             else Node.make("dim_value", (), dim=v, dtype="int64")
             for v in array.reshape(-1)]
    if not parts:
        return constant(np.zeros(array.shape, np.int64))
    flat = concat([reshape(p, (1,)) for p in parts], axis=0)
    return reshape(flat, array.shape)


def evaluate_constant(node: Node, known: dict[Node, np.ndarray | None]) -> np.ndarray | None:
    """The value of `node` when it is computed from constants alone (evaluated with the
    ops' NumPy references), else None. `known` memoizes per node across calls."""
    if node in known:
        return known[node]
    for n in _unknown_in_order(node, known):
        if n.op in _NOT_FOLDED or not is_static(n.shape) or any(
                known[i] is None for i in n.inputs):
            known[n] = None
            continue
        if n.op == "constant":
            known[n] = n.value
            continue
        try:
            with np.errstate(all="ignore"):
                value = get_op(n.op).numpy(n, [known[i] for i in n.inputs], Env({}, 0, {}))
        except (ValueError, IndexError):
            known[n] = None  # an error at run time: let the compiled function raise it
            continue
        known[n] = None if isinstance(value, tuple) else np.asarray(value)
    return known[node]


def _unknown_in_order(root: Node, known: dict) -> list[Node]:
    """The nodes `root` depends on that `known` lacks, each after its inputs (the search
    stops at known nodes, so a model's import walks each node once)."""
    order: list[Node] = []
    seen: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen or node in known:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((i, False) for i in reversed(node.inputs)
                     if id(i) not in seen and i not in known)
    return order
