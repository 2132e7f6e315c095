"""Ops that move data without arithmetic: reshape, transpose, broadcast_to, concat, slice,
and their builders (basic indexing, `x[...]`, included); `unbroadcast`, the adjoint of
broadcasting, serves every gradient rule.

Reductions build on this module, so the one reduction used here (the sum in
`unbroadcast`) is built by name."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np
import sympy

from graphc import dtypes
from graphc.errors import build_error, user_location
from graphc.ir.node import Node
from graphc.ir.op import Kind, Op, register_class
from graphc.ops.leaf import operands
from graphc.shapes import (
    Shape,
    as_dim,
    as_shape,
    broadcast,
    dims_equal,
    normalize_axis,
    shape_str,
    size,
)

__all__ = [  # the public builders (graphc/dsl.py)
    "reshape", "transpose", "broadcast_to", "concat", "expand_dims", "squeeze",
    "slice_axis", "stop_gradient",
]


@register_class
class Reshape(Op):
    """attrs: shape, the target shape with -1 already resolved."""

    name = "reshape"
    kind = Kind.VIEW

    @staticmethod
    def resolve(x, shape) -> tuple:
        """The target shape with a single -1 replaced by the size it must have."""
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        unknown = [k for k, d in enumerate(shape) if isinstance(d, int) and d == -1]
        if len(unknown) > 1:
            raise build_error("reshape", f"can only infer one dim, got {shape}")
        try:
            known = tuple(1 if k in unknown else as_dim(d) for k, d in enumerate(shape))
        except (TypeError, ValueError) as exc:
            raise build_error("reshape", f"bad target shape {shape}: {exc}") from None
        if not unknown:
            return known
        total, rest = size(x.shape), size(known)
        if rest == 0:
            raise build_error("reshape", f"cannot infer -1 in {shape} with a zero dim")
        inferred = sympy.simplify(sympy.sympify(total) / rest)
        if not inferred.is_integer:
            raise build_error("reshape", f"cannot reshape {shape_str(x.shape)} into {shape}")
        resolved = list(known)
        resolved[unknown[0]] = as_dim(inferred)
        return tuple(resolved)

    def infer(self, inputs, attrs):
        (x,) = inputs
        shape = attrs["shape"]
        if not dims_equal(size(x.shape), size(shape)):
            raise build_error(self.name, f"cannot reshape {shape_str(x.shape)} "
                              f"({size(x.shape)} elements) into {shape_str(shape)}")
        return x.dtype, shape

    def numpy(self, node, args, env):
        return args[0].reshape(env.shape(node.shape))

    def grad(self, node, out_grad):
        return [reshape(out_grad, node.inputs[0].shape)]


@register_class
class Transpose(Op):
    """attrs: axes, a permutation (output axis k is input axis axes[k])."""

    name = "transpose"

    def infer(self, inputs, attrs):
        (x,) = inputs
        axes = attrs["axes"]
        if sorted(axes) != list(range(x.ndim)):
            raise build_error(self.name, f"axes {axes} are not a permutation of the "
                              f"{x.ndim} axes of {shape_str(x.shape)}")
        return x.dtype, tuple(x.shape[a] for a in axes)

    def numpy(self, node, args, env):
        return np.transpose(args[0], node.attrs["axes"])

    def grad(self, node, out_grad):
        return [transpose(out_grad, tuple(np.argsort(node.attrs["axes"]).tolist()))]


@register_class
class BroadcastTo(Op):
    """attrs: shape. NumPy broadcasting of the input to exactly that shape."""

    name = "broadcast_to"

    def infer(self, inputs, attrs):
        (x,) = inputs
        shape = attrs["shape"]
        try:
            ok = len(shape) >= x.ndim and all(
                dims_equal(a, b) for a, b in zip(broadcast(x.shape, shape), shape))
        except ValueError:
            ok = False
        if not ok:
            raise build_error(self.name, f"cannot broadcast {shape_str(x.shape)} "
                              f"to {shape_str(shape)}")
        return x.dtype, shape

    def numpy(self, node, args, env):
        return np.broadcast_to(args[0], env.shape(node.shape))

    def grad(self, node, out_grad):
        return [unbroadcast(out_grad, node.inputs[0].shape)]


@register_class
class Concat(Op):
    """attrs: axis. Joins inputs along an existing axis; other dims must agree."""

    name = "concat"

    def infer(self, inputs, attrs):
        if not inputs:
            raise build_error(self.name, "needs at least one input")
        axis, first = attrs["axis"], inputs[0]
        for other in inputs[1:]:
            same = other.ndim == first.ndim and all(
                k == axis or dims_equal(a, b)
                for k, (a, b) in enumerate(zip(first.shape, other.shape)))
            if not same:
                shapes = ", ".join(shape_str(i.shape) for i in inputs)
                raise build_error(self.name, f"shapes {shapes} differ off axis {axis}")
        total = as_dim(sum((i.shape[axis] for i in inputs), sympy.S.Zero))
        shape = first.shape[:axis] + (total,) + first.shape[axis + 1:]
        return dtypes.promote(*(i.dtype for i in inputs)), shape

    def numpy(self, node, args, env):
        return np.concatenate([a.astype(node.dtype, copy=False) for a in args],
                              axis=node.attrs["axis"])

    def grad(self, node, out_grad):
        grads, start = [], 0
        for x in node.inputs:
            stop = start + x.shape[node.attrs["axis"]]
            grads.append(slice_axis(out_grad, node.attrs["axis"], start, stop))
            start = stop
        return grads


def slice_length(dim, start, stop, step):
    """Size of dim[start:stop:step] with already-normalized (start, stop, step)."""
    if isinstance(dim, int):
        return len(range(start, stop, step))
    return dim  # symbolic dims are only sliced whole (step +1 or -1)


def normalize_slice(dim, item: slice, axis: int):
    """(start, stop, step) for a slice of a dim, as Python's slice.indices gives them."""
    step = 1 if item.step is None else item.step
    if step == 0:
        raise build_error("slice", f"slice step cannot be zero (axis {axis})")
    if isinstance(dim, int):
        return item.indices(dim)
    if item.start is None and item.stop is None and step in (1, -1):
        return (None, None, step)
    raise build_error("slice", f"axis {axis} has symbolic size {dim}: only ':' and '::-1' "
                      "can slice it")


def _as_slices(index):
    """Python slices for normalized (start, stop, step); a stop of -1 means "past index 0"."""
    return tuple(slice(start, None if stop is not None and stop < 0 else stop, step)
                 for start, stop, step in index)


@register_class
class Slice(Op):
    """attrs: index, a (start, stop, step) per axis, normalized (rank is kept)."""

    name = "slice"

    def infer(self, inputs, attrs):
        (x,) = inputs
        index = attrs["index"]
        if len(index) != x.ndim:
            raise build_error(self.name, f"index has {len(index)} entries for rank {x.ndim}")
        return x.dtype, tuple(slice_length(d, *t) for d, t in zip(x.shape, index))

    def numpy(self, node, args, env):
        return args[0][_as_slices(node.attrs["index"])]

    def grad(self, node, out_grad):
        x = node.inputs[0]
        return [Node.make("slice_grad", (out_grad,), shape=x.shape, index=node.attrs["index"])]


@register_class
class SliceGrad(Op):
    """The gradient of slice: the incoming values placed in zeros of the sliced input's shape.

    attrs: shape (of the sliced input), index (as in slice)."""

    name = "slice_grad"

    def infer(self, inputs, attrs):
        (g,) = inputs
        shape = as_shape(attrs["shape"])
        expected = tuple(slice_length(d, *t) for d, t in zip(shape, attrs["index"]))
        if len(expected) != g.ndim or not all(dims_equal(a, b) for a, b in zip(expected, g.shape)):
            raise build_error(self.name, f"gradient of shape {shape_str(g.shape)} does not fit "
                              f"the slice {attrs['index']} of {shape_str(shape)}")
        return g.dtype, shape

    def numpy(self, node, args, env):
        out = np.zeros(env.shape(node.shape), dtype=node.dtype)
        out[_as_slices(node.attrs["index"])] = args[0]
        return out

    def grad(self, node, out_grad):
        return [Node.make("slice", (out_grad,), index=node.attrs["index"])]


@register_class
class StopGradient(Op):
    """The identity, through which no gradient flows."""

    name = "stop_gradient"
    kind = Kind.VIEW
    differentiable = False

    def infer(self, inputs, attrs):
        (x,) = inputs
        return x.dtype, x.shape

    def numpy(self, node, args, env):
        return args[0]


# ----- builders ---------------------------------------------------------------------------
def reshape(x, shape) -> Node:
    """numpy.reshape; one dim may be -1. Dims may be symbolic (x.shape[0], or "N")."""
    (x,) = operands(x)
    target = Reshape.resolve(x, shape)
    if target == x.shape:
        return x
    return Node.make("reshape", (x,), shape=target)


def transpose(x, axes=None) -> Node:
    """Permute axes (reverse them when axes is None), as numpy.transpose."""
    (x,) = operands(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    try:
        axes = tuple(normalize_axis(a, x.ndim) for a in axes)
    except (TypeError, ValueError) as exc:
        raise build_error("transpose", f"{exc} (input shape {shape_str(x.shape)})") from None
    if axes == tuple(range(x.ndim)):
        return x
    return Node.make("transpose", (x,), axes=axes)


def broadcast_to(x, shape) -> Node:
    """numpy.broadcast_to."""
    (x,) = operands(x)
    shape = as_shape(shape)
    if shape == x.shape:
        return x
    return Node.make("broadcast_to", (x,), shape=shape)


def concat(values: Sequence, axis: int = 0) -> Node:
    """numpy.concatenate of values along an existing axis."""
    values = operands(*values)
    if not values:
        raise build_error("concat", "needs at least one input")
    try:
        axis = normalize_axis(axis, values[0].ndim)
    except (TypeError, ValueError) as exc:
        raise build_error("concat", f"{exc} (shape {shape_str(values[0].shape)})") from None
    if len(values) == 1:
        return values[0]
    return Node.make("concat", values, axis=axis)


def expand_dims(x, axis: int) -> Node:
    (x,) = operands(x)
    axis = normalize_axis(axis, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x, axis=None) -> Node:
    """Drop size-1 axes (all of them when axis is None)."""
    (x,) = operands(x)
    if axis is None:
        axes = {k for k, d in enumerate(x.shape) if isinstance(d, int) and d == 1}
    else:
        axes = {normalize_axis(a, x.ndim) for a in (axis if isinstance(axis, tuple) else (axis,))}
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise build_error("squeeze", f"axis {bad[0]} of {shape_str(x.shape)} is not 1")
    return reshape(x, tuple(d for k, d in enumerate(x.shape) if k not in axes))


def slice_axis(x, axis: int, start, stop, step: int = 1) -> Node:
    """x[..., start:stop:step, ...] along one axis."""
    (x,) = operands(x)
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop, step)
    return getitem(x, tuple(index))


def getitem(x, index) -> Node:
    """Basic indexing: ints, slices (negative steps too), Ellipsis and None (gc.getitem, in
    graphc/ops/subscript.py, adds NumPy's advanced indexing)."""
    (x,) = operands(x)
    if not isinstance(index, tuple):
        index = (index,)
    for item in index:
        if not (item is None or item is Ellipsis or isinstance(item, slice)
                or isinstance(item, (int, np.integer)) and not isinstance(item, bool)):
            raise build_error("getitem", f"only basic indexing (ints, slices, ..., None) is "
                              f"supported, got {item!r}")
    if builtins.sum(item is Ellipsis for item in index) > 1:
        raise build_error("getitem", "an index can only have a single ellipsis")
    used = builtins.sum(item is not None and item is not Ellipsis for item in index)
    if used > x.ndim:
        raise build_error("getitem", f"too many indices ({used}) for shape {shape_str(x.shape)}")
    if Ellipsis in index:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (x.ndim - used) + index[k + 1:]
    else:
        index = index + (slice(None),) * (x.ndim - used)

    spec, out_shape, axis = [], [], 0
    for item in index:
        if item is None:
            out_shape.append(1)
            continue
        dim = x.shape[axis]
        if isinstance(item, slice):
            start, stop, step = normalize_slice(dim, item, axis)
            spec.append((start, stop, step))
            out_shape.append(len(range(start, stop, step)) if isinstance(dim, int) else dim)
        else:
            if not isinstance(dim, int):
                raise build_error("getitem", f"cannot take an int index on axis {axis} of "
                                  f"symbolic size {dim}")
            k = int(item)
            if not -dim <= k < dim:
                raise IndexError(f"getitem: index {k} is out of bounds for axis {axis} with "
                                 f"size {dim} (shape {shape_str(x.shape)}) (at "
                                 f"{user_location()})")
            k %= dim
            spec.append((k, k + 1, 1))
        axis += 1
    out = x
    whole = tuple((0, d, 1) if isinstance(d, int) else (None, None, 1) for d in x.shape)
    if tuple(spec) != whole:
        out = Node.make("slice", (x,), index=tuple(spec))
    return reshape(out, tuple(out_shape))


def stop_gradient(x) -> Node:
    """x itself, but gc.grad treats it as a constant."""
    return Node.make("stop_gradient", operands(x))


def unbroadcast(g: Node, shape: Shape) -> Node:
    """g (of a broadcast shape) summed down to `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = list(range(lead))
    for k, dim in enumerate(shape):
        if isinstance(dim, int) and dim == 1 and not (
                isinstance(g.shape[lead + k], int) and g.shape[lead + k] == 1):
            axes.append(lead + k)
        elif not dims_equal(dim, g.shape[lead + k]) and not dim == 1:
            raise ValueError(f"cannot unbroadcast {g.shape} to {shape}")
    out = Node.make("sum", (g,), axes=tuple(axes), keepdims=False) if axes else g
    return reshape(out, shape)
