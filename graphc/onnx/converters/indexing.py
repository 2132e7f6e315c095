"""Indexing ONNX ops: Slice and Split (basic slicing), Gather (a slice for a constant
scalar index, else graphc's take along the axis), OneHot."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.onnx.converters.common import axis_of
from graphc.onnx.registry import converter
from graphc.ops import elementwise as ew
from graphc.ops.elementwise import cast, where
from graphc.ops.indexing import one_hot, take
from graphc.ops.shape import getitem, transpose
from graphc.shapes import shape_str

_BIG = 2**31 - 1  # "to the end": exporters write INT64_MAX or INT32_MAX (MIN backwards)


def _axis_slice(ctx, dim, start: int, end: int, step: int, axis: int) -> slice:
    """The Python slice of one axis; Python's rules for out-of-range starts and ends are
    ONNX's. An axis of symbolic size can only be taken whole (forwards or backwards)."""
    if step == 0:
        raise ctx.error(f"step 0 on axis {axis}")
    if isinstance(dim, int):
        return slice(start, end, step)
    whole = (step == 1 and (start == 0 or start <= -_BIG) and end >= _BIG) or \
            (step == -1 and (start == -1 or start >= _BIG) and end <= -_BIG)
    if not whole:
        raise ctx.unsupported(f"it slices axis {axis}, of symbolic size {dim}, partly "
                              f"({start}:{end}:{step}); only whole symbolic axes can be sliced")
    return slice(None, None, step)


def _slice_index(ctx, shape) -> tuple:
    starts = ctx.static_ints(1, "starts")
    ends = ctx.static_ints(2, "ends")
    rank = len(shape)
    axes = ctx.static_ints(3, "axes", None) or tuple(range(len(starts)))
    steps = ctx.static_ints(4, "steps", None) or (1,) * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.error(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ "
                        "in length")
    index = [slice(None)] * rank
    seen = set()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis_of(ctx, axis, rank)
        if axis in seen:
            raise ctx.error(f"axes {axes} repeat axis {axis}")
        seen.add(axis)
        index[axis] = _axis_slice(ctx, shape[axis], start, end, step, axis)
    return tuple(index)


@converter("Slice", fold=lambda ctx, statics: statics[0][_slice_index(ctx, statics[0].shape)])
def slice_(ctx):
    x = ctx.input(0)
    return getitem(x, _slice_index(ctx, x.shape))


def _split_bounds(ctx, dim, outputs: int) -> list[tuple[int, int]]:
    """(start, stop) of each piece of an axis of size dim."""
    sizes = ctx.static_ints(1, "split", None)
    if sizes is None:
        if not isinstance(dim, int):
            raise ctx.unsupported(f"it splits an axis of symbolic size {dim}")
        count = ctx.attr("num_outputs", outputs)
        if count != outputs:
            raise ctx.error(f"num_outputs {count} but {outputs} outputs named")
        piece = -(-dim // count)  # ceil: the last piece is smaller (opset 18)
        sizes = [min(piece, dim - k * piece) for k in range(count)]
        if ctx.opset < 18 and dim % count:
            raise ctx.error(f"an axis of {dim} does not split evenly into {count}")
    if len(sizes) != outputs or any(s < 0 for s in sizes):
        raise ctx.error(f"split sizes {sizes} for {outputs} outputs")
    if isinstance(dim, int) and sum(sizes) != dim:
        raise ctx.error(f"split sizes {sizes} do not add up to the axis size {dim}")
    bounds, start = [], 0
    for s in sizes:
        bounds.append((start, start + s))
        start += s
    return bounds


def _split_pieces(ctx, value, shape):
    axis = axis_of(ctx, ctx.attr("axis", 0), len(shape))
    pieces = []
    for start, stop in _split_bounds(ctx, shape[axis], len(ctx.node.output)):
        index = [slice(None)] * len(shape)
        index[axis] = slice(start, stop)
        pieces.append(value[tuple(index)])
    return pieces


@converter("Split", fold=lambda ctx, statics: _split_pieces(ctx, statics[0], statics[0].shape))
def split(ctx):
    x = ctx.input(0)
    return _split_pieces(ctx, x, x.shape)


def _fold_gather(ctx, statics):
    data, ids = statics[0], statics[1]
    if ids.dtype == object:
        return None
    return np.take(data, ids.astype(np.int64), axis=axis_of(ctx, ctx.attr("axis", 0), data.ndim))


@converter("Gather", fold=_fold_gather)
def gather(ctx):
    x = ctx.input(0)
    axis = axis_of(ctx, ctx.attr("axis", 0), x.ndim)
    dim = x.shape[axis]
    if ctx.is_static(1) and ctx.static(1, "indices").dtype != object:
        ids = ctx.static(1, "indices").astype(np.int64)
        if isinstance(dim, int):
            bad = ids[(ids < -dim) | (ids >= dim)]
            if bad.size:
                raise ctx.error(f"index {int(bad[0])} is out of range for axis {axis} of "
                                f"size {dim} (data {shape_str(x.shape)})")
            ids = np.where(ids < 0, ids + dim, ids)
        if ids.ndim == 0 and int(ids) >= 0:
            return getitem(x, (slice(None),) * axis + (int(ids),))
        if (ids < 0).any():
            raise ctx.unsupported(f"negative indices on axis {axis} of symbolic size {dim}")
        return take(x, ctx.constant(ids), axis)
    ids = ctx.input(1)
    if not dtypes.is_int(ids.dtype):
        raise ctx.error(f"indices must be int32 or int64, got {ids.dtype.name}")
    if not isinstance(dim, int):
        raise ctx.unsupported(f"run-time indices on axis {axis} of symbolic size {dim}")
    return take(x, ids, axis)  # negative ids count from the end, in ONNX and numpy.take


@converter("OneHot")
def onehot(ctx):
    ids = ctx.input(0)
    depth = ctx.static(1, "depth").reshape(-1)
    values = ctx.input(2)
    if depth.size != 1 or depth.dtype == object:
        raise ctx.error("depth must be one number known at import")
    depth = int(depth[0])
    if values.shape != (2,):
        raise ctx.error(f"values must be [off, on], got shape {shape_str(values.shape)}")
    if not dtypes.is_int(ids.dtype):
        ids = cast(ids, "int64")  # ONNX takes float indices too (truncated)
    ids = where(ew.less(ids, 0), ids + depth, ids)
    # out-of-range ids give all "off" in ONNX: move them to a spare class, dropped below
    ids = where(ew.logical_or(ew.less(ids, 0), ew.greater_equal(ids, depth)), depth, ids)
    hot = getitem(one_hot(ids, depth + 1, values.dtype), (Ellipsis, slice(0, depth)))
    off, on = getitem(values, 0), getitem(values, 1)
    out = off + hot * (on - off)
    axis = axis_of(ctx, ctx.attr("axis", -1), ids.ndim + 1)
    if axis == ids.ndim:
        return out
    order = list(range(ids.ndim))
    order.insert(axis, ids.ndim)
    return transpose(out, tuple(order))

