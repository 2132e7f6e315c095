"""Gathers and scatters along one axis, PyTorch's `gather`, `scatter`, `scatter_add` and
`scatter_reduce` (sum, prod, mean, amax, amin; `include_self`), and NumPy's
`take_along_axis`: two primitive ops, `gather` and `scatter`, whose gradients are each
other (and, for the reducing scatters, PyTorch's rules: products with zeros handled
exactly, maxima sharing the gradient evenly among ties).

An index out of range raises ValueError at call time on every backend, naming the op, the
index and where the user built the op; it is never used as an address. Duplicate indices
of a scatter are applied in row-major order of the index (the last one wins for a plain
scatter), the same on every backend and thread count."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.ops.arguments import one_axis, pick, require_int, values
from graphc.ops.elementwise import cast, equal, logical_and, where
from graphc.ops.indexing import wrap_index
from graphc.ops.shape import broadcast_to, reshape
from graphc.shapes import broadcast, dims_equal, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "gather", "take_along_axis", "take_along_dim", "scatter", "scatter_add",
    "scatter_reduce",
]

REDUCTIONS = ("assign", "sum", "prod", "amax", "amin")


def index_error(op: str, node: Node, value: int, size: int, axis: int) -> str:
    """The message of an index out of [0, size) along an axis (both backends)."""
    return (f"{op}: index {value} is out of range [0, {size}) along axis {axis} "
            f"(at {node.origin})")


def check_range(op: str, node: Node, index: np.ndarray, size: int, axis: int) -> None:
    """Raise ValueError for the first index of `index` outside [0, size)."""
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = index[(index < 0) | (index >= size)].ravel()[0]
        raise ValueError(index_error(op, node, int(bad), size, axis))


def _fits(small, big) -> bool:
    """Whether a dim is at most another (symbolic dims only when equal)."""
    if isinstance(small, int) and isinstance(big, int):
        return small <= big
    return dims_equal(small, big)


def _region(shape) -> tuple[slice, ...]:
    return tuple(slice(0, d) for d in shape)


def _zeros(shape, dtype) -> Node:
    (zero,) = values("zeros", np.zeros((), dtype))
    return broadcast_to(zero, shape)


@register_class
class Gather(Op):
    """attrs: axis. out[i] = x[i with i[axis] replaced by index[i]] (PyTorch's gather):
    index has x's rank, any size along the axis, and at most x's size along the others;
    the output has the index's shape."""

    name = "gather"

    def infer(self, inputs, attrs):
        x, index = inputs
        require_int(self.name, index)
        axis = attrs["axis"]
        if index.ndim != x.ndim or not all(
                _fits(i, d) for k, (i, d) in enumerate(zip(index.shape, x.shape)) if k != axis):
            raise build_error(self.name, f"index of shape {shape_str(index.shape)} must have the "
                              f"rank of the input {shape_str(x.shape)} and no larger dims off "
                              f"axis {axis}")
        return x.dtype, index.shape

    def numpy(self, node, args, env):
        x, index = args
        axis = node.attrs["axis"]
        check_range(self.name, node, index, x.shape[axis], axis)
        region = tuple(slice(None) if k == axis else slice(0, d)
                       for k, d in enumerate(index.shape))
        return np.take_along_axis(x[region], index.astype(np.int64), axis)

    def grad(self, node, out_grad):
        x, index = node.inputs
        base = _zeros(x.shape, out_grad.dtype)
        return [Node.make("scatter", (base, index, out_grad), axis=node.attrs["axis"],
                          reduce="sum"), None]


@register_class
class Scatter(Op):
    """attrs: axis, reduce (one of REDUCTIONS). out = x, then for each position i of index in
    row-major order, out[j] = reduce(out[j], src[i]) with j = i with j[axis] = index[i]
    ("assign" overwrites). src has the index's shape; index, x's rank and at most x's size
    off the axis."""

    name = "scatter"

    def infer(self, inputs, attrs):
        x, index, src = inputs
        require_int(self.name, index)
        axis = attrs["axis"]
        if attrs["reduce"] not in REDUCTIONS:
            raise build_error(self.name, f"reduce must be one of {REDUCTIONS}, got "
                              f"{attrs['reduce']!r}")
        if index.ndim != x.ndim or not all(
                _fits(i, d) for k, (i, d) in enumerate(zip(index.shape, x.shape)) if k != axis):
            raise build_error(self.name, f"index of shape {shape_str(index.shape)} must have the "
                              f"rank of the input {shape_str(x.shape)} and no larger dims off "
                              f"axis {axis}")
        if src.shape != index.shape:
            raise build_error(self.name, f"src of shape {shape_str(src.shape)} must have the "
                              f"index's shape {shape_str(index.shape)}")
        if src.dtype != x.dtype:
            raise build_error(self.name, f"src ({src.dtype.name}) and input ({x.dtype.name}) "
                              "must have one dtype", dtype=True)
        return x.dtype, x.shape

    def numpy(self, node, args, env):
        x, index, src = args
        axis, reduce = node.attrs["axis"], node.attrs["reduce"]
        check_range(self.name, node, index, x.shape[axis], axis)
        out = np.array(x, dtype=node.dtype, copy=True)
        coords = list(np.indices(index.shape, sparse=False))
        coords[axis] = index.astype(np.int64)
        target = tuple(coords)
        if reduce == "assign":
            flat = np.ravel_multi_index(target, out.shape).ravel()
            _, first = np.unique(flat[::-1], return_index=True)
            last = flat.size - 1 - first  # the last write to each target wins
            out.reshape(-1)[flat[last]] = src.reshape(-1)[last]
            return out
        ufunc = {"sum": np.add, "prod": np.multiply, "amax": np.maximum,
                 "amin": np.minimum}[reduce]
        with np.errstate(all="ignore"):
            ufunc.at(out, target, src)
        return out

    def grad(self, node, out_grad):
        x, index, src = node.inputs
        axis, reduce = node.attrs["axis"], node.attrs["reduce"]

        def scatter_into(base, values, how):
            return Node.make("scatter", (base, index, values), axis=axis, reduce=how)

        def gather_back(value):
            return Node.make("gather", (value, index), axis=axis)

        if reduce == "assign":
            grad_src = where(_last_writes(index, axis, x.shape[axis]), gather_back(out_grad), 0.0)
            return [scatter_into(out_grad, _zeros(index.shape, out_grad.dtype), "assign"), None,
                    grad_src]
        if reduce == "sum":
            return [out_grad, None, gather_back(out_grad)]
        if reduce == "prod":
            return _prod_grads(node, out_grad, scatter_into, gather_back)
        # amax / amin: the gradient is shared evenly by every value equal to the result.
        x_hit = cast(equal(x, node), x.dtype)
        src_hit = cast(equal(src, gather_back(node)), x.dtype)
        share = out_grad / scatter_into(x_hit, src_hit, "sum")
        return [x_hit * share, None, src_hit * gather_back(share)]


def _last_writes(index: Node, axis: int, size) -> Node:
    """bool, index's shape: whether each write of a plain scatter is the last to its
    target (the one whose value stays; the others get no gradient). A target's writes all
    come from one line along the axis, in order, so the last has the largest position."""
    count = index.shape[axis]
    shape = tuple(count if k == axis else 1 for k in range(index.ndim))
    (position,) = values("scatter", np.arange(count, dtype=np.int64).reshape(shape))
    position = broadcast_to(position, index.shape)
    (unset,) = values("scatter", np.full((), -1, np.int64))
    base = broadcast_to(unset, index.shape[:axis] + (size,) + index.shape[axis + 1:])
    last = Node.make("scatter", (base, index, position), axis=axis, reduce="amax")
    return equal(Node.make("gather", (last, index), axis=axis), position)


def _prod_grads(node, out_grad, scatter_into, gather_back):
    """PyTorch's gradient of a product scatter: exact where an input or a src is 0 (a
    single zero among a target's factors gets the product of the others)."""
    x, index, src = node.inputs
    x_safe = where(equal(x, 0.0), 1.0, x)
    grad_x = out_grad * scatter_into(x_safe, src, "prod") / x_safe
    src_zero = equal(src, 0.0)
    zeros_per_target = scatter_into(_zeros(x.shape, x.dtype), cast(src_zero, x.dtype), "sum")
    single = logical_and(src_zero, equal(gather_back(zeros_per_target), 1.0))
    without_it = scatter_into(x, where(single, 1.0, src), "prod")
    grad_src = where(single, gather_back(out_grad * without_it),
                     gather_back(out_grad * node) / where(src_zero, 1.0, src))
    return [grad_x, None, grad_src]


# ----- builders ---------------------------------------------------------------------------
def _axis_of(op: str, x: Node, dim, axis) -> int:
    chosen = pick(op, "dim", dim, "axis", axis)
    if chosen is None:
        raise build_error(op, "needs dim= (or axis=)")
    return one_axis(op, chosen, x, "dim")


def gather(x, dim=None, index=None, *, axis=None) -> Node:
    """torch.gather(x, dim, index): out[i][j] = x[index[i][j]][j] for dim 0. index (int) has
    x's rank and no larger dims off `dim`; indices must lie in [0, x.shape[dim])."""
    x, index = values("gather", x, index)
    return Node.make("gather", (x, index), axis=_axis_of("gather", x, dim, axis))


def take_along_axis(x, indices, axis=None, *, dim=None) -> Node:
    """numpy.take_along_axis: indices (int, x's rank) broadcast against x off the axis;
    negative indices count from the end. axis None takes from the flattened x."""
    x, indices = values("take_along_axis", x, indices)
    require_int("take_along_axis", indices)
    axis = pick("take_along_axis", "axis", axis, "dim", dim)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
        if indices.ndim != 1:
            raise build_error("take_along_axis", f"with axis None, indices must be 1-D, got "
                              f"{shape_str(indices.shape)}")
    axis = one_axis("take_along_axis", axis, x)
    if indices.ndim != x.ndim:
        raise build_error("take_along_axis", f"indices of shape {shape_str(indices.shape)} "
                          f"must have the rank of the input {shape_str(x.shape)}")
    try:
        shape = broadcast(tuple(1 if k == axis else d for k, d in enumerate(x.shape)),
                          tuple(1 if k == axis else d for k, d in enumerate(indices.shape)))
    except ValueError:
        raise build_error("take_along_axis", f"indices of shape {shape_str(indices.shape)} do "
                          f"not broadcast against the input {shape_str(x.shape)} off axis "
                          f"{axis}") from None
    x = broadcast_to(x, tuple(x.shape[axis] if k == axis else d for k, d in enumerate(shape)))
    indices = broadcast_to(indices, tuple(indices.shape[axis] if k == axis else d
                                          for k, d in enumerate(shape)))
    indices = wrap_index(indices, x.shape[axis], "take_along_axis", axis)
    return Node.make("gather", (x, indices), axis=axis)


def take_along_dim(x, indices, dim=None) -> Node:
    """torch.take_along_dim: take_along_axis under PyTorch's name."""
    return take_along_axis(x, indices, dim)


def _scatter_operands(op: str, x, dim, axis, index, src, value):
    x, index = values(op, x, index)
    require_int(op, index)
    axis = _axis_of(op, x, dim, axis)
    if (src is None) == (value is None):
        raise build_error(op, "give src (a value) or value (a scalar), exactly one")
    if index.ndim != x.ndim:
        raise build_error(op, f"index of shape {shape_str(index.shape)} must have the rank of "
                          f"the input {shape_str(x.shape)}")
    if src is None:
        (src,) = values(op, value, reference=x.dtype)
        if src.ndim:
            raise build_error(op, f"value must be a scalar, got shape {shape_str(src.shape)}")
        src = broadcast_to(src, index.shape)
    else:
        (src,) = values(op, src, reference=x.dtype)
        if src.ndim != index.ndim or not all(_fits(i, s) for i, s in zip(index.shape,
                                                                          src.shape)):
            raise build_error(op, f"src of shape {shape_str(src.shape)} must have the index's "
                              f"rank and dims at least the index's {shape_str(index.shape)}")
        if src.shape != index.shape:  # PyTorch reads the index-shaped corner of src
            src = Node.make("slice", (src,), index=tuple((0, d, 1) for d in index.shape))
    if src.dtype != x.dtype:
        raise build_error(op, f"src ({src.dtype.name}) and input ({x.dtype.name}) must have "
                          "one dtype", dtype=True)
    return x, axis, index, src


def scatter(x, dim=None, index=None, src=None, *, value=None, axis=None) -> Node:
    """torch.scatter: a copy of x with out[index[i][j]][j] = src[i][j] (dim 0); `value`
    scatters one scalar. With repeated indices the last in row-major order wins."""
    x, axis, index, src = _scatter_operands("scatter", x, dim, axis, index, src, value)
    return Node.make("scatter", (x, index, src), axis=axis, reduce="assign")


def scatter_add(x, dim=None, index=None, src=None, *, axis=None) -> Node:
    """torch.scatter_add: a copy of x with src[i][j] added to out[index[i][j]][j] (dim 0)."""
    x, axis, index, src = _scatter_operands("scatter_add", x, dim, axis, index, src, None)
    return Node.make("scatter", (x, index, src), axis=axis, reduce="sum")


def scatter_reduce(x, dim=None, index=None, src=None, reduce: str = "sum", *,
                   include_self: bool = True, axis=None) -> Node:
    """torch.scatter_reduce: src's values reduced into a copy of x at the index ("sum",
    "prod", "mean", "amax", "amin"); with include_self=False, x's own value at a target
    that receives a value is left out (targets that receive none keep x's value)."""
    op = "scatter_reduce"
    x, axis, index, src = _scatter_operands(op, x, dim, axis, index, src, None)
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise build_error(op, f"reduce must be 'sum', 'prod', 'mean', 'amax' or 'amin', got "
                          f"{reduce!r}")
    if reduce == "mean":
        if not dtypes.is_float(x.dtype):
            raise build_error(op, f"reduce='mean' needs a float input, got {x.dtype.name}",
                              dtype=True)
        counts = _counts(x, axis, index)
        base = x if include_self else _zeros(x.shape, x.dtype)
        total = Node.make("scatter", (base, index, src), axis=axis, reduce="sum")
        if include_self:
            return total / (counts + 1.0)
        return where(equal(counts, 0.0), x, total / where(equal(counts, 0.0), 1.0, counts))
    if include_self:
        return Node.make("scatter", (x, index, src), axis=axis, reduce=reduce)
    identity = _identity(reduce, x.dtype)
    (base,) = values(op, identity, reference=x.dtype)
    reduced = Node.make("scatter", (broadcast_to(base, x.shape), index, src), axis=axis,
                        reduce=reduce)
    counts = _counts(x, axis, index)
    return where(equal(counts, 0), x, reduced)


def _counts(x: Node, axis: int, index: Node) -> Node:
    """How many indices name each element of x (in x's dtype, or int32 for non-floats)."""
    dtype = x.dtype if dtypes.is_float(x.dtype) else np.dtype("int32")
    (one,) = values("scatter_reduce", np.ones((), dtype))
    return Node.make("scatter", (_zeros(x.shape, dtype), index, broadcast_to(one, index.shape)),
                     axis=axis, reduce="sum")


def _identity(reduce: str, dtype: np.dtype):
    """The value a reduction starts from: reducing it with v gives v."""
    if reduce == "sum":
        return 0
    if reduce == "prod":
        return 1
    if dtypes.is_float(dtype):
        return -np.inf if reduce == "amax" else np.inf
    if dtype == dtypes.BOOL:
        return reduce == "amin"
    info = np.iinfo(dtype)
    return info.min if reduce == "amax" else info.max
