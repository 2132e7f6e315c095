"""Resize with mode "nearest": for each resized axis, the input index every output index
reads is computed at import (ONNX's coordinate transformations and rounding modes, as its
reference implementation computes them in float64), and the axis is gathered by those
indices. Linear and cubic modes wait for gc.interpolate (issue 16)."""

from __future__ import annotations

import math

import numpy as np

from graphc.onnx.converters.common import axis_of
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.ops.indexing import take
from graphc.shapes import shape_str


def _source(mode: str, i: int, scale: float, size_in: int, size_out: int) -> float:
    """The input coordinate of output index i."""
    if mode == "align_corners":
        return 0.0 if size_out == 1 else i * (size_in - 1) / (size_out - 1)
    if mode == "asymmetric":
        return i / scale
    if mode == "pytorch_half_pixel":
        return -0.5 if scale * size_in == 1 else (i + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = size_out / (scale * size_in)
        return size_in / 2 * (1 - adjustment) + (i + 0.5) / scale - 0.5
    raise Unsupported(f"coordinate_transformation_mode {mode!r} (it needs an extrapolation "
                      "value outside the region of interest)")


def _nearest(x: float, rounding: str) -> int:
    low = math.floor(x)
    if x == low:
        return low
    fraction = x - low
    up = {"round_prefer_floor": fraction > 0.5, "round_prefer_ceil": fraction >= 0.5,
          "floor": False, "ceil": True}.get(rounding)
    if up is None:
        raise Unsupported(f"nearest_mode {rounding!r}")
    return low + 1 if up else low


def nearest_indices(size_in: int, size_out: int, scale: float, mode: str,
                    rounding: str) -> np.ndarray:
    """The input index each of the size_out outputs of one axis reads."""
    index = [_nearest(_source(mode, i, scale, size_in, size_out), rounding)
             for i in range(size_out)]
    return np.clip(np.array(index, dtype=np.int64), 0, size_in - 1)


def _sizes_and_scales(ctx, shape) -> tuple[list, list[float]]:
    rank = len(shape)
    axes = ctx.attr("axes", None)
    axes = tuple(range(rank)) if axes is None else tuple(axis_of(ctx, a, rank) for a in axes)
    if len(set(axes)) != len(axes):
        raise ctx.error(f"axes {axes} repeat an axis")
    scales = ctx.static(2, "scales", None) if ctx.has_input(2) else None
    sizes = ctx.static_ints(3, "sizes", None) if ctx.has_input(3) else None
    if scales is not None and scales.size == 0:
        scales = None
    if (scales is None) == (sizes is None):
        raise ctx.error("exactly one of scales and sizes must be given")
    out, factors = list(shape), [1.0] * rank
    if sizes is not None:
        if len(sizes) != len(axes):
            raise ctx.error(f"sizes {sizes} for the {len(axes)} axes {axes}")
        policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
        ratios = [s / _static(ctx, shape[a]) for s, a in zip(sizes, axes)]
        if policy != "stretch":
            common = min(ratios) if policy == "not_larger" else max(ratios)
            ratios = [common] * len(axes)
            sizes = [int(common * _static(ctx, shape[a]) + 0.5) for a in axes]
        for a, s, r in zip(axes, sizes, ratios):
            out[a], factors[a] = int(s), float(r)
        return out, factors
    scales = [float(s) for s in np.asarray(scales, dtype=np.float32).reshape(-1)]
    if len(scales) != len(axes) or any(s <= 0 for s in scales):
        raise ctx.error(f"scales {scales} must be {len(axes)} positive numbers")
    for a, s in zip(axes, scales):
        if s != 1.0:
            out[a] = int(s * _static(ctx, shape[a]))
        factors[a] = s
    return out, factors


def _static(ctx, dim) -> int:
    if not isinstance(dim, int):
        raise Unsupported(f"it resizes an axis of symbolic size {dim}")
    return dim


@converter("Resize")
def resize(ctx):
    mode = ctx.attr("mode", "nearest")
    if mode != "nearest":
        raise Unsupported(f"mode {mode!r} waits for gc.interpolate (issue 16)")
    if ctx.attr("antialias", 0):
        raise Unsupported("antialias (it only applies to linear and cubic modes)")
    x = ctx.input(0)
    out_shape, factors = _sizes_and_scales(ctx, x.shape)
    transform = ctx.attr("coordinate_transformation_mode", "half_pixel")
    rounding = ctx.attr("nearest_mode", "round_prefer_floor")
    for axis, (size_in, size_out, scale) in enumerate(zip(x.shape, out_shape, factors)):
        if size_out == size_in and scale == 1.0:
            continue
        size_in = _static(ctx, size_in)
        if size_out < 1:
            raise ctx.error(f"axis {axis} of {shape_str(x.shape)} would be resized to "
                            f"{size_out}")
        ids = nearest_indices(size_in, size_out, scale, transform, rounding)
        if not np.array_equal(ids, np.arange(size_in)):
            x = take(x, ctx.constant(ids), axis)
    return x
