"""Gathers by integer ids along one axis: `take` (NumPy's take, PyTorch's index_select
and embedding lookup), its scatter-add gradient, `wrap_index` (negative indices counted
from the end, checked at call time), one_hot and masked_fill."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.ops.arguments import one_axis, pick, require_int, reworded, values
from graphc.ops.leaf import operands
from graphc.ops.shape import reshape
from graphc.shapes import evaluate_dim, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "embedding", "one_hot", "take", "index_select", "masked_fill",
]


def check_ids(op: str, ids: np.ndarray, limit: int, what: str, node=None) -> None:
    """Refuse ids outside [0, limit) at run time with a message naming them (and where the
    user built `node`)."""
    if ids.size and (ids.min() < 0 or ids.max() >= limit):
        bad = ids[(ids < 0) | (ids >= limit)].ravel()[0]
        raise ValueError(ids_message(op, what, int(bad), limit, node))


def ids_message(op: str, what: str, value: int, limit, node=None) -> str:
    """The message of an id out of [0, limit), on every backend."""
    where = "" if node is None else f" (at {node.origin})"
    return f"{op}: {what} {value} is out of range [0, {limit}){where}"


def _require_int(op, ids):
    if not dtypes.is_int(ids.dtype):
        raise build_error(op, f"ids must be int32 or int64, got {ids.dtype.name}", dtype=True)


@register_class
class Take(Op):
    """attrs: axis, caller (the builder's name, for messages). numpy.take(x, ids, axis): slices
    of x along the axis picked by integer ids of any shape, which replace that axis in the
    output; ids must lie in [0, size)."""

    name = "take"

    def infer(self, inputs, attrs):
        table, ids = inputs
        _require_int(self.name, ids)
        axis = attrs["axis"]
        if not 0 <= axis < table.ndim:
            raise build_error(self.name, f"axis {axis} is out of range for the input "
                              f"{shape_str(table.shape)}")
        return table.dtype, table.shape[:axis] + ids.shape + table.shape[axis + 1:]

    def numpy(self, node, args, env):
        table, ids = args
        axis = node.attrs["axis"]
        check_ids(node.attrs["caller"], ids, table.shape[axis], "id", node)
        return np.take(table, ids, axis=axis)

    def grad(self, node, out_grad):
        table, ids = node.inputs
        return [Node.make("take_grad", (out_grad, ids), rows=table.shape[node.attrs["axis"]],
                          **node.attrs), None]


@register_class
class TakeGrad(Op):
    """The gradient of take: slices of the incoming gradient summed into zeros of the taken
    input's shape (attrs: axis, rows, the size of that axis, caller as take's)."""

    name = "take_grad"

    def infer(self, inputs, attrs):
        g, ids = inputs
        _require_int(self.name, ids)
        axis = attrs["axis"]
        return g.dtype, g.shape[:axis] + (attrs["rows"],) + g.shape[axis + ids.ndim:]

    def numpy(self, node, args, env):
        g, ids = args
        axis = node.attrs["axis"]
        check_ids(node.attrs["caller"], ids, env.shape((node.attrs["rows"],))[0], "id", node)
        out = np.zeros(env.shape(node.shape), dtype=node.dtype)
        moved = np.moveaxis(out, axis, 0)
        lead = tuple(range(axis, axis + ids.ndim))
        np.add.at(moved, ids, np.moveaxis(g, lead, tuple(range(ids.ndim))))
        return out

    def grad(self, node, out_grad):
        return [Node.make("take", (out_grad, node.inputs[1]), axis=node.attrs["axis"],
                          caller=node.attrs["caller"]), None]


@register_class
class WrapIndex(Op):
    """attrs: size (a dim), caller and axis (for messages). Indices in [-size, size), negative
    ones counted from the end (NumPy's rule) as indices in [0, size); any other raises
    ValueError at call time naming the op, the index and the user's line."""

    name = "wrap_index"
    differentiable = False

    def infer(self, inputs, attrs):
        (ids,) = inputs
        _require_int(self.name, ids)
        return ids.dtype, ids.shape

    def numpy(self, node, args, env):
        (ids,) = args
        size = evaluate_dim(node.attrs["size"], env.binding)
        bad = (ids < -size) | (ids >= size)
        if bad.any():
            raise ValueError(wrap_message(node, int(ids[bad].ravel()[0]), size))
        return np.where(ids < 0, ids + size, ids).astype(node.dtype)


def wrap_message(node, value: int, size: int) -> str:
    attrs = node.attrs
    return (f"{attrs['caller']}: index {value} is out of bounds for axis {attrs['axis']} "
            f"with size {size} (at {node.origin})")


@register_class
class OneHot(Op):
    """attrs: n, dtype, ignore_index. labels (...) -> (..., n) with 1 at each label; labels
    must be in [0, n), except ignore_index (None or an int), whose row is all zeros."""

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
        n, ignore_index = node.attrs["n"], node.attrs.get("ignore_index")
        hot = labels[..., None] == np.arange(n)
        if ignore_index is not None:
            hot &= (labels != ignore_index)[..., None]
            labels = labels[labels != ignore_index]
        check_ids("one_hot", labels, n, "label")
        return hot.astype(node.dtype)


def embedding(ids, table) -> Node:
    """table[ids] (PyTorch's argument order): rows of a (V, D) table for integer ids."""
    ids, table = operands(ids, table)
    return Node.make("take", (table, ids), axis=0, caller="embedding")


def wrap_index(ids: Node, size, op: str, axis: int) -> Node:
    """ids with negative entries counted from the end of an axis of `size` (checked at
    call time: outside [-size, size) raises, naming `op`); ids known nonnegative pass."""
    if ids.op == "constant":
        array = ids.attrs["value"].array
        if isinstance(size, int):
            bad = (array < -size) | (array >= size)
            if bad.any():
                raise build_error(op, f"index {int(array[bad].ravel()[0])} is out of bounds for "
                                  f"axis {axis} with size {size}")
        if array.size == 0 or array.min() >= 0 and isinstance(size, int):
            return ids
    return Node.make("wrap_index", (ids,), size=size, caller=op, axis=axis)


def take(x, indices, axis=None) -> Node:
    """numpy.take: elements (axis None: of the flattened x) or slices along an axis picked by
    integer indices of any shape; negative indices count from the end."""
    x, indices = values("take", x, indices)
    require_int("take", indices)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = one_axis("take", axis, x)
    indices = wrap_index(indices, x.shape[axis], "take", axis)
    return Node.make("take", (x, indices), axis=axis, caller="take")


def index_select(x, dim=None, index=None, *, axis=None) -> Node:
    """torch.index_select(x, dim, index): slices along dim picked by a 1-D int index, which
    must lie in [0, x.shape[dim]) (checked at call time)."""
    x, index = values("index_select", x, index)
    require_int("index_select", index)
    chosen = pick("index_select", "dim", dim, "axis", axis)
    if chosen is None:
        raise build_error("index_select", "needs dim= (or axis=)")
    if index.ndim > 1:
        raise build_error("index_select", f"index must be 1-D, got {shape_str(index.shape)}")
    axis = one_axis("index_select", chosen, x, "dim")
    return Node.make("take", (x, reshape(index, (-1,))), axis=axis, caller="index_select")


def masked_fill(x, mask, value) -> Node:
    """torch.masked_fill: x with `value` (a scalar) where the bool mask (broadcast against
    x) is True."""
    (x,) = values("masked_fill", x)
    (mask,) = values("masked_fill", mask)
    if mask.dtype != dtypes.BOOL:
        raise build_error("masked_fill", f"mask must be bool, got {mask.dtype.name}", dtype=True)
    (fill,) = values("masked_fill", value, reference=x.dtype)
    if fill.ndim:
        raise build_error("masked_fill", f"value must be a scalar, got shape "
                          f"{shape_str(fill.shape)}")
    try:
        return Node.make("where", (mask, fill, x))
    except ValueError as exc:
        raise reworded("masked_fill", exc) from None


def one_hot(labels, n: int, dtype="float32", ignore_index: int | None = None) -> Node:
    """(..., n) with a 1 at each label; labels out of [0, n) raise at call time, except
    `ignore_index`, which gives a row of zeros (the losses' ignored targets)."""
    (labels,) = operands(labels)
    extra = {} if ignore_index is None else {"ignore_index": int(ignore_index)}
    return Node.make("one_hot", (labels,), n=int(n), dtype=dtypes.as_dtype(dtype).name,
                     **extra)
