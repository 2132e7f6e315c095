"""Reductions over axes (sum, mean, max, min, argmax), NumPy's dtype rules."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ops.registry import Op, register
from graphc.shapes import normalize_axes, shape_str


def reduced_count(shape, axes) -> int:
    """How many elements each output element of a reduction over `axes` combines."""
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def user_origin(node) -> str:
    """Where the user built the reduction `node` computes: its own origin, or for a fused
    kernel the origin of the reduction it absorbed (the kernel was built by the optimizer)."""
    from graphc.passes.rewrite import members_of  # the passes import the ops
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
        from graphc.autodiff.reduction import reduction_grad
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
