"""Ops that move data without arithmetic: reshape, transpose, broadcast_to, concat, slice."""

from __future__ import annotations

import numpy as np
import sympy

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.registry import Op, register_class
from graphc.shapes import as_dim, as_shape, broadcast, dims_equal, shape_str, size


@register_class
class Reshape(Op):
    """attrs: shape, the target shape with -1 already resolved."""

    name = "reshape"

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
        from graphc.dsl import reshape
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
        from graphc.dsl import transpose
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
        from graphc.autodiff.broadcast import unbroadcast
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
        from graphc.dsl import slice_axis
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
    differentiable = False

    def infer(self, inputs, attrs):
        (x,) = inputs
        return x.dtype, x.shape

    def numpy(self, node, args, env):
        return args[0]
