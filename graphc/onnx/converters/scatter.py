"""Element and N-d gathers and scatters: GatherElements and ScatterElements onto
gc.gather, gc.scatter and gc.scatter_reduce; GatherND and ScatterND through a flattened
view of the indexed leading axes (each index tuple becomes one row number of it).
ONNX's negative indices count from the end of their axis: they are wrapped first."""

from __future__ import annotations

import math

from graphc import dtypes
from graphc.onnx.converters.common import axis_of
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.ops import elementwise as ew
from graphc.ops.creation import arange
from graphc.ops.gather import gather, scatter, scatter_reduce
from graphc.ops.indexing import take
from graphc.ops.shape import broadcast_to, getitem, reshape
from graphc.shapes import shape_str

# ONNX's reduction attribute -> gc.scatter_reduce's reduce (None: plain assignment)
_REDUCTIONS = {"none": None, "add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _wrapped(ctx, ids, size):
    """ids with negative entries counted from the end of an axis of `size`."""
    if not dtypes.is_int(ids.dtype):
        raise ctx.error(f"indices must be int32 or int64, got {ids.dtype.name}")
    return ew.where(ew.less(ids, 0), ids + size, ids)


def _reduction(ctx):
    reduction = ctx.attr("reduction", "none")
    if reduction not in _REDUCTIONS:
        raise ctx.error(f"unknown reduction {reduction!r}")
    return _REDUCTIONS[reduction]


def _scatter_into(x, axis: int, ids, updates, reduction):
    if reduction is None:
        return scatter(x, axis, ids, updates)
    return scatter_reduce(x, axis, ids, updates, reduction, include_self=True)


@converter("GatherElements")
def gather_elements(ctx):
    x, ids = ctx.input(0), ctx.input(1)
    axis = axis_of(ctx, ctx.attr("axis", 0), x.ndim)
    return gather(x, axis, _wrapped(ctx, ids, x.shape[axis]))


@converter("ScatterElements", "Scatter")
def scatter_elements(ctx):
    x, ids, updates = ctx.input(0), ctx.input(1), ctx.input(2)
    axis = axis_of(ctx, ctx.attr("axis", 0), x.ndim)
    if ids.shape != updates.shape:
        raise ctx.error(f"indices {shape_str(ids.shape)} and updates "
                        f"{shape_str(updates.shape)} must have one shape")
    return _scatter_into(x, axis, _wrapped(ctx, ids, x.shape[axis]), updates,
                         _reduction(ctx))


def _static_shape(ctx, shape, what: str) -> tuple[int, ...]:
    if not all(isinstance(d, int) for d in shape):
        raise Unsupported(f"its {what} has symbolic dims {shape_str(shape)}")
    return tuple(shape)


def _row_numbers(ctx, data_shape, ids, batch_dims: int):
    """The row of data reshaped to (prod(data_shape[:batch_dims + k]), ...) that each
    index tuple of ids (its last axis, of length k) names: shape ids.shape[:-1]."""
    k = ids.shape[-1]
    lead = data_shape[:batch_dims + k]
    strides = [math.prod(lead[j + 1:]) for j in range(len(lead))]
    outer = ids.shape[:-1]
    rows = None
    for j in range(batch_dims):  # the batch position itself, broadcast over the rest
        position = reshape(arange(lead[j], dtype=ids.dtype),
                           tuple(lead[j] if a == j else 1 for a in range(len(outer))))
        term = position * strides[j]
        rows = term if rows is None else rows + term
    for j in range(k):
        column = _wrapped(ctx, getitem(ids, (Ellipsis, j)), lead[batch_dims + j])
        term = column * strides[batch_dims + j]
        rows = term if rows is None else rows + term
    return broadcast_to(rows, tuple(outer)), math.prod(lead)


def _nd_operands(ctx):
    data, ids = ctx.input(0), ctx.input(1)
    data_shape = _static_shape(ctx, data.shape, "data")
    _static_shape(ctx, ids.shape, "indices")
    if ids.ndim < 1 or not isinstance(ids.shape[-1], int):
        raise ctx.error(f"indices {shape_str(ids.shape)} need a last axis of index tuples")
    return data, data_shape, ids


@converter("GatherND")
def gather_nd(ctx):
    data, data_shape, ids = _nd_operands(ctx)
    b = int(ctx.attr("batch_dims", 0))
    k = ids.shape[-1]
    if b < 0 or b + k > data.ndim or tuple(ids.shape[:b]) != data_shape[:b] or k < 1:
        raise ctx.error(f"indices {shape_str(ids.shape)} with batch_dims {b} do not index "
                        f"data {shape_str(data.shape)}")
    rows, count = _row_numbers(ctx, data_shape, ids, b)
    flat = reshape(data, (count, *data_shape[b + k:]))
    return take(flat, rows, 0)


@converter("ScatterND")
def scatter_nd(ctx):
    data, data_shape, ids = _nd_operands(ctx)
    updates = ctx.input(2)
    k = ids.shape[-1]
    rest = data_shape[k:]
    if not 1 <= k <= data.ndim or tuple(updates.shape) != (*ids.shape[:-1], *rest):
        raise ctx.error(f"indices {shape_str(ids.shape)} and updates "
                        f"{shape_str(updates.shape)} do not fit data {shape_str(data.shape)}")
    rows, count = _row_numbers(ctx, data_shape, ids, 0)
    tuples = math.prod(ids.shape[:-1])
    flat = reshape(data, (count, *rest))
    flat_updates = reshape(updates, (tuples, *rest))
    index = broadcast_to(reshape(rows, (tuples, *(1,) * len(rest))), (tuples, *rest))
    out = _scatter_into(flat, 0, index, flat_updates, _reduction(ctx))
    return reshape(out, data_shape)
