"""Gathers by integer ids: embedding lookup (take rows), its scatter-add gradient, one_hot."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.ops.leaf import operands
from graphc.shapes import shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "embedding", "one_hot",
]


def check_ids(op: str, ids: np.ndarray, limit: int, what: str) -> None:
    """Refuse ids outside [0, limit) at run time with a message naming them."""
    if ids.size and (ids.min() < 0 or ids.max() >= limit):
        bad = ids[(ids < 0) | (ids >= limit)].ravel()[0]
        raise ValueError(f"{op}: {what} {bad} is out of range [0, {limit})")


def _require_int(op, ids):
    if not dtypes.is_int(ids.dtype):
        raise build_error(op, f"ids must be int32 or int64, got {ids.dtype.name}", dtype=True)


@register_class
class Take(Op):
    """table[ids]: rows of a (V, ...) table picked by integer ids of any shape."""

    name = "take"

    def infer(self, inputs, attrs):
        table, ids = inputs
        _require_int(self.name, ids)
        if table.ndim < 1:
            raise build_error(self.name,
                              f"table must be at least 1-D, got {shape_str(table.shape)}")
        return table.dtype, ids.shape + table.shape[1:]

    def numpy(self, node, args, env):
        table, ids = args
        check_ids("embedding", ids, table.shape[0], "id")
        return table[ids]

    def grad(self, node, out_grad):
        table, ids = node.inputs
        return [Node.make("take_grad", (out_grad, ids), rows=table.shape[0]), None]


@register_class
class TakeGrad(Op):
    """The gradient of take: rows of the incoming gradient summed into a (rows, ...) zero table."""

    name = "take_grad"

    def infer(self, inputs, attrs):
        g, ids = inputs
        _require_int(self.name, ids)
        return g.dtype, (attrs["rows"],) + g.shape[ids.ndim:]

    def numpy(self, node, args, env):
        g, ids = args
        out = np.zeros(env.shape(node.shape), dtype=node.dtype)
        np.add.at(out, ids, g)
        return out

    def grad(self, node, out_grad):
        return [Node.make("take", (out_grad, node.inputs[1])), None]


@register_class
class OneHot(Op):
    """attrs: n, dtype. labels (...) -> (..., n) with 1 at each label; labels must be in [0, n)."""

    name = "one_hot"
    differentiable = False

    def infer(self, inputs, attrs):
        (labels,) = inputs
        _require_int(self.name, labels)
        if attrs["n"] < 1:
            raise build_error(self.name, f"n must be positive, got {attrs['n']}")
        return dtypes.as_dtype(attrs["dtype"]), labels.shape + (attrs["n"],)

    def numpy(self, node, args, env):
        (labels,) = args
        n = node.attrs["n"]
        check_ids("one_hot", labels, n, "label")
        return (labels[..., None] == np.arange(n)).astype(node.dtype)


def embedding(ids, table) -> Node:
    """table[ids] (PyTorch's argument order): rows of a (V, D) table for integer ids."""
    ids, table = operands(ids, table)
    return Node.make("take", (table, ids))


def one_hot(labels, n: int, dtype="float32") -> Node:
    """(..., n) with a 1 at each label; labels out of [0, n) raise at call time."""
    (labels,) = operands(labels)
    return Node.make("one_hot", (labels,), n=int(n), dtype=dtypes.as_dtype(dtype).name)
