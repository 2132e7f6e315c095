"""Reductions over axes (sum, mean, max, min, argmax), NumPy's dtype rules, with their
builders and gradients (the incoming gradient broadcast back over the reduced axes).

Elementwise ops build on this module, so the gradient of max and min builds the equality
test and the cast it needs by name."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, get_op, register
from graphc.ir.provenance import members_of
from graphc.ops.leaf import dim_value, operands
from graphc.ops.shape import broadcast_to, reshape
from graphc.shapes import as_dim, normalize_axes, shape_str, size

__all__ = [  # the public builders (graphc/dsl.py)
    "sum", "mean", "max", "min", "argmax",
]


def reduced_count(shape, axes) -> int:
    """How many elements each output element of a reduction over `axes` combines."""
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def user_origin(node) -> str:
    """Where the user built the reduction `node` computes: its own origin, or for a fused
    kernel the origin of the reduction it absorbed (the kernel was built by the optimizer)."""
    kind = node.attrs.get("kind", node.op)
    for member in reversed(members_of(node)):
        if member.op == kind:
            return member.origin
    return node.origin


def check_reducible(op: str, shape, axes, node) -> None:
    """Refuse a max/min/argmax over no elements: it has no identity (NumPy raises too), and
    a made-up value would be garbage; the error names where the user built `node`'s
    reduction. sum and mean of nothing are 0 and NaN."""
    if op in ("max", "min", "argmax") and reduced_count(shape, axes) == 0:
        raise ValueError(f"{op}: zero-size reduction over axes {tuple(axes)} of an input of "
                         f"shape {shape_str(tuple(shape))} has no identity "
                         f"(at {user_origin(node)})")


def _mean(x, axis, keepdims):
    """np.mean, without its RuntimeWarning for a mean over no elements (NaN, as 0/0)."""
    if reduced_count(x.shape, range(x.ndim) if axis is None else axis) == 0:
        with np.errstate(all="ignore"):
            total = np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float64)
            return np.true_divide(total, 0)
    return np.mean(x, axis=axis, keepdims=keepdims)


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if k in axes else d for k, d in enumerate(shape))
    return tuple(d for k, d in enumerate(shape) if k not in axes)


class Reduction(Op):
    """attrs: axes (sorted tuple of nonnegative ints), keepdims (bool)."""

    pattern = Pattern.REDUCTION

    def __init__(self, name, reference, dtype_rule):
        self.name = name
        self.reference = reference
        self.dtype_rule = dtype_rule

    def normalize(self, x, axis, keepdims):
        try:
            axes = normalize_axes(axis, x.ndim)
        except (ValueError, TypeError) as exc:
            raise build_error(self.name, f"{exc} (input shape {shape_str(x.shape)})") from None
        return {"axes": axes, "keepdims": bool(keepdims)}

    def infer(self, inputs, attrs):
        (x,) = inputs
        if self.dtype_rule == "sum":
            dtype = x.dtype if dtypes.is_float(x.dtype) else dtypes.INT64
        elif self.dtype_rule == "mean":
            dtype = dtypes.float_result(x.dtype)
        else:
            dtype = x.dtype
        return dtype, reduced_shape(x.shape, attrs["axes"], attrs["keepdims"])

    def numpy(self, node, args, env):
        (x,) = args
        check_reducible(self.name, x.shape, node.attrs["axes"], node)
        with np.errstate(all="ignore"):
            out = self.reference(x, axis=node.attrs["axes"], keepdims=node.attrs["keepdims"])
        return np.asarray(out, dtype=node.dtype)

    def grad(self, node, out_grad):
        return reduction_grad(node, out_grad)


register(Reduction("sum", np.sum, "sum"))
register(Reduction("mean", _mean, "mean"))
register(Reduction("max", np.max, "same"))
register(Reduction("min", np.min, "same"))


class ArgMax(Op):
    """Index of the first maximum along one axis (or of the flattened array); int64."""

    name = "argmax"
    differentiable = False

    def normalize(self, x, axis, keepdims):
        if axis is not None:
            try:
                axis = normalize_axes(axis, x.ndim)
            except (ValueError, TypeError) as exc:
                raise build_error(self.name, f"{exc} (input shape {shape_str(x.shape)})") \
                    from None
            if len(axis) != 1:
                raise build_error(self.name, "takes one axis or None")
            axis = axis[0]
        return {"axis": axis, "keepdims": bool(keepdims)}

    def infer(self, inputs, attrs):
        (x,) = inputs
        axis = attrs["axis"]
        axes = tuple(range(x.ndim)) if axis is None else (axis,)
        return dtypes.INT64, reduced_shape(x.shape, axes, attrs["keepdims"])

    def numpy(self, node, args, env):
        (x,) = args
        axis, keepdims = node.attrs["axis"], node.attrs["keepdims"]
        axes = range(x.ndim) if axis is None else (axis,)
        check_reducible(self.name, x.shape, tuple(axes), node)
        out = np.argmax(x, axis=axis, keepdims=keepdims)
        return np.asarray(out, dtype=np.int64)


register(ArgMax())


# ----- gradients ----------------------------------------------------------------------------
def _expand(g: Node, x: Node, axes) -> Node:
    """g, with the reduced axes restored as size 1 and broadcast to x's shape."""
    kept = reshape(g, reduced_shape(x.shape, axes, keepdims=True))
    return broadcast_to(kept, x.shape)


def reduction_grad(node: Node, out_grad: Node) -> list[Node | None]:
    """The gradient of sum, mean, max or min (or of the reduction a fused kernel ends in)."""
    (x,) = node.inputs
    axes = node.attrs["axes"]
    g = _expand(out_grad, x, axes)
    if node.op == "sum":
        return [g]
    if node.op == "mean":
        count = as_dim(size(tuple(x.shape[a] for a in axes)))
        return [g / dim_value(count, x.dtype)]
    # max / min: the gradient is shared equally among the positions that attain it.
    hit = Node.make("equal", (x, _expand(node, x, axes)))
    hit = Node.make("cast", (hit,), dtype=x.dtype.name)
    ties = _expand(sum(hit, axes), x, axes)
    return [g * hit / ties]


# ----- builders -----------------------------------------------------------------------------
def _reduce(op: str, x, axis, keepdims) -> Node:
    (x,) = operands(x)
    return Node.make(op, (x,), **get_op(op).normalize(x, axis, keepdims))


def sum(x, axis=None, keepdims: bool = False) -> Node:  # noqa: A001
    return _reduce("sum", x, axis, keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Node:
    return _reduce("mean", x, axis, keepdims)


def max(x, axis=None, keepdims: bool = False) -> Node:  # noqa: A001
    """Largest value over axes; the gradient is shared equally among tied maxima."""
    return _reduce("max", x, axis, keepdims)


def min(x, axis=None, keepdims: bool = False) -> Node:  # noqa: A001
    return _reduce("min", x, axis, keepdims)


def argmax(x, axis=None, keepdims: bool = False) -> Node:
    """Index of the first maximum (int64); of the flattened value when axis is None."""
    return _reduce("argmax", x, axis, keepdims)
