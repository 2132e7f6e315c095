"""Reductions: ReduceSum/Mean/Max/Min/Prod, the norms and log-sums composed from them,
ArgMax/ArgMin, and the running CumSum and CumProd. ONNX keeps the input's dtype where
NumPy (and graphc) would widen an integer sum or mean: the result is cast back. A
reduction over an empty axis gives ONNX's identity element (0 for sums, -inf for a max,
...), known at import."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.onnx.converters.common import axes_of, axis_of, number
from graphc.onnx.registry import converter
from graphc.ops import elementwise as ew
from graphc.ops import scan
from graphc.ops.elementwise import cast
from graphc.ops.pad import pad
from graphc.ops.rearrange import flip
from graphc.ops.reduction import argmax, max, mean, min, prod, sum  # noqa: A004
from graphc.ops.shape import getitem, stop_gradient
from graphc.shapes import shape_str


def _axes(ctx, rank: int) -> tuple[int, ...] | None:
    """The reduced axes (None: every axis), or () for "no reduction" (noop_with_empty_axes)."""
    if ctx.has_input(1):
        axes = ctx.static_ints(1, "axes")
    else:
        axes = ctx.attr("axes", None)
    if not axes:
        return () if ctx.attr("noop_with_empty_axes", 0) else None
    return axes_of(ctx, axes, rank)


def _reduce(ctx, kind: str, prepare=None, finish=None, empty=0.0):
    """The reduction `kind` of prepare(x) over the node's axes, then finish(result)."""
    x = ctx.input(0)
    axes = _axes(ctx, x.ndim)
    keepdims = bool(ctx.attr("keepdims", 1))
    value = x if prepare is None else prepare(x)
    if axes == ():
        out = value  # noop_with_empty_axes: the elementwise part only
    else:
        reduced = tuple(range(x.ndim)) if axes is None else axes
        if any(x.shape[a] == 0 for a in reduced):
            return _empty(ctx, x, reduced, keepdims, empty)
        builder = {"sum": sum, "mean": mean, "max": max, "min": min, "prod": prod}[kind]
        out = builder(value, reduced, keepdims=keepdims)
        if finish is not None:
            out = finish(out)
    return out if out.dtype == x.dtype else cast(out, x.dtype)


def _empty(ctx, x, axes, keepdims: bool, fill):
    """A reduction over an empty axis: ONNX's identity element, of the output's shape."""
    shape = tuple(1 if k in axes else d for k, d in enumerate(x.shape)) if keepdims else \
        tuple(d for k, d in enumerate(x.shape) if k not in axes)
    if not all(isinstance(d, int) for d in shape):
        raise ctx.unsupported(f"an empty reduction of {shape_str(x.shape)} with symbolic dims")
    if x.dtype == np.bool_:
        fill = bool(fill > 0)  # max of nothing is False, min True
    elif dtypes.is_int(x.dtype) and not np.isfinite(fill):
        info = np.iinfo(x.dtype)
        fill = info.min if fill < 0 else info.max
    return np.full(shape, fill, dtype=x.dtype)


def _square(x):
    return x * x


def _log_sum_exp(ctx):
    x = ctx.input(0)
    axes = _axes(ctx, x.ndim)
    if axes == ():
        return x
    reduced = tuple(range(x.ndim)) if axes is None else axes
    if any(x.shape[a] == 0 for a in reduced):
        return _empty(ctx, x, reduced, bool(ctx.attr("keepdims", 1)), -np.inf)
    shift = stop_gradient(max(x, reduced, keepdims=True))
    # an all -inf row has shift -inf: use 0 there, so the row gives log(0) = -inf, not NaN
    shift = ew.where(ew.equal(shift, -np.inf), 0.0, shift)
    total = ew.log(sum(ew.exp(x - shift), reduced, keepdims=True)) + shift
    if not ctx.attr("keepdims", 1):
        total = getitem(total, tuple(0 if k in reduced else slice(None)
                                     for k in range(x.ndim)))
    return total


converter("ReduceSum")(lambda ctx: _reduce(ctx, "sum"))
converter("ReduceMean")(lambda ctx: _reduce(ctx, "mean", empty=np.nan))
converter("ReduceMax")(lambda ctx: _reduce(ctx, "max", empty=-np.inf))
converter("ReduceMin")(lambda ctx: _reduce(ctx, "min", empty=np.inf))
converter("ReduceProd")(lambda ctx: _reduce(ctx, "prod", empty=1.0))
converter("ReduceL1")(lambda ctx: _reduce(ctx, "sum", prepare=ew.abs))
converter("ReduceL2")(lambda ctx: _reduce(ctx, "sum", prepare=_square, finish=ew.sqrt))
converter("ReduceSumSquare")(lambda ctx: _reduce(ctx, "sum", prepare=_square))
converter("ReduceLogSum")(lambda ctx: _reduce(ctx, "sum", finish=ew.log, empty=-np.inf))
converter("ReduceLogSumExp")(_log_sum_exp)


def _arg(ctx, largest: bool):
    x = ctx.input(0)
    axis = axis_of(ctx, ctx.attr("axis", 0), x.ndim)
    keepdims = bool(ctx.attr("keepdims", 1))
    if not largest:  # the first minimum of x is the first maximum of a decreasing map of x
        x = -x if dtypes.is_float(x.dtype) else (-1 - x)  # -1 - x never overflows
    if not ctx.attr("select_last_index", 0):
        return argmax(x, axis, keepdims=keepdims)
    size = x.shape[axis]
    if not isinstance(size, int):
        raise ctx.unsupported(f"select_last_index on axis {axis} of symbolic size {size}")
    flipped = getitem(x, (slice(None),) * axis + (slice(None, None, -1),))
    return (size - 1) - argmax(flipped, axis, keepdims=keepdims)


converter("ArgMax")(lambda ctx: _arg(ctx, largest=True))
converter("ArgMin")(lambda ctx: _arg(ctx, largest=False))


def _running(ctx, builder, identity):
    """Running sums or products along an axis; reverse runs from the end (a flip on both
    sides), exclusive leaves each element's own value out (the run shifted by one: the
    identity in front, the last value dropped)."""
    x = ctx.input(0)
    axis = ctx.static_ints(1, "axis")
    if len(axis) != 1:
        raise ctx.error(f"axis must be one number, got {axis}")
    axis = axis_of(ctx, axis[0], x.ndim)
    reverse = bool(ctx.attr("reverse", 0))
    value = flip(x, (axis,)) if reverse else x
    if ctx.attr("exclusive", 0):
        shift = [0] * (2 * (x.ndim - axis))
        shift[-2:] = [1, -1]  # (before, after) pairs from the last axis backwards
        value = pad(value, tuple(shift), value=number(identity, x.dtype))
    out = builder(value, axis)
    out = out if out.dtype == x.dtype else cast(out, x.dtype)
    return flip(out, (axis,)) if reverse else out


converter("CumSum")(lambda ctx: _running(ctx, scan.cumsum, 0))
converter("CumProd")(lambda ctx: _running(ctx, scan.cumprod, 1))
