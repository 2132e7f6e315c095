"""Helpers the converters share: axes, ONNX broadcasting rules, dtypes as Python numbers."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.ir.node import Node
from graphc.onnx.errors import Unsupported
from graphc.shapes import shape_str


def axis_of(ctx, axis: int, rank: int, what: str = "axis") -> int:
    """An ONNX axis (negative counts from the end) as a nonnegative int, checked."""
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def axes_of(ctx, axes, rank: int, what: str = "axes") -> tuple[int, ...]:
    """Several ONNX axes as sorted nonnegative ints; repeats are an error."""
    out = tuple(sorted(axis_of(ctx, int(a), rank, what) for a in axes))
    if len(set(out)) != len(out):
        raise ctx.error(f"{what} {tuple(axes)} repeat an axis")
    return out


def require_float(ctx, x: Node, what: str = "input") -> None:
    """Refuse a non-float input where graphc's op (or the composition) needs a float."""
    if not dtypes.is_float(x.dtype):
        raise Unsupported(f"its {what} is {x.dtype.name}; graphc computes this op on float32 "
                          "and float64 only")


def number(value, dtype: np.dtype):
    """A Python number of the kind of `dtype` (so it stays weak next to a value of it)."""
    if dtypes.is_float(dtype):
        return float(value)
    if dtype == np.bool_:
        return bool(value)
    return int(value)


def unidirectional(ctx, value: Node, target: Node, what: str) -> Node:
    """`value` broadcast to `target`'s shape the ONNX way (only value's dims may grow):
    an error naming both shapes otherwise."""
    from graphc.shapes import broadcast, dims_equal

    try:
        shape = broadcast(value.shape, target.shape)
    except ValueError:
        shape = None
    if shape is None or len(shape) != len(target.shape) or not all(
            dims_equal(a, b) for a, b in zip(shape, target.shape)):
        raise ctx.error(f"the {what} of shape {shape_str(value.shape)} does not broadcast to "
                        f"{shape_str(target.shape)}")
    return value
