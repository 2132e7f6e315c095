"""Resize, one resized axis at a time (ONNX's resize is separable), with what each output
index reads computed at import in float64 as ONNX's reference implementation computes it
(coordinate transformations, rounding modes, cubic_coeff_a, exclude_outside, antialias).
Mode "nearest" gathers the axis by the input index each output reads (gc.take); modes
"linear" and "cubic" multiply the axis by the (output, input) matrix of interpolation
weights, so the gradient is that matrix's transpose. gc.interpolate is PyTorch's
interpolate, whose sizes and coordinates are a subset of ONNX's: the weights built here
cover all of them, and tf_crop_and_resize's region of interest (outputs from outside
the input take extrapolation_value, axis by axis, as the reference does)."""

from __future__ import annotations

import math

import numpy as np

from graphc.onnx.converters.common import axis_of, require_float
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.ops.elementwise import where
from graphc.ops.indexing import take
from graphc.ops.leaf import constant
from graphc.ops.linalg import matmul
from graphc.ops.shape import transpose
from graphc.shapes import shape_str


def _source(mode: str, i: int, scale: float, size_in: int, size_out: int,
            roi: tuple[float, float] = (0.0, 1.0)) -> float:
    """The input coordinate of output index i (`roi`: the region of interest, a start
    and an end as fractions of the axis, of tf_crop_and_resize)."""
    if mode == "tf_crop_and_resize":
        width, (start, end) = scale * size_in, roi
        if width == 1:
            return (end - start) * (size_in - 1) / 2 + start * (size_in - 1)
        return i * (end - start) * (size_in - 1) / (width - 1) + start * (size_in - 1)
    if mode == "align_corners":  # the reference's output width is scale * size_in
        width = scale * size_in
        return 0.0 if width == 1 else i * (size_in - 1) / (width - 1)
    if mode == "asymmetric":
        return i / scale
    if mode == "pytorch_half_pixel":
        return -0.5 if scale * size_in == 1 else (i + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = size_out / (scale * size_in)
        return size_in / 2 * (1 - adjustment) + (i + 0.5) / scale - 0.5
    raise Unsupported(f"coordinate_transformation_mode {mode!r}")


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
                    rounding: str, roi=(0.0, 1.0)) -> np.ndarray:
    """The input index each of the size_out outputs of one axis reads."""
    index = [_nearest(_source(mode, i, scale, size_in, size_out, roi), rounding)
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


def _kernel_value(t: float, a: float) -> float:
    """Keys' cubic convolution kernel with coefficient a at distance t."""
    t = abs(t)
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0.0


def _cubic(ratio: float, a: float) -> list[float]:
    """The weights of the four taps around a point `ratio` past the second."""
    return [_kernel_value(t, a) for t in (ratio + 1, ratio, 1 - ratio, 2 - ratio)]


def _taps(mode: str, ratio: float, scale: float, a: float, antialias: bool) -> np.ndarray:
    """The weights of the taps of one output (taps centred on the point, `ratio` in (0, 1]
    past the tap below it); antialias widens them by 1 / scale when downsampling."""
    if not antialias:
        return np.array([1 - ratio, ratio] if mode == "linear" else _cubic(ratio, a))
    scale = min(scale, 1.0)
    reach = 1 if mode == "linear" else 2
    start = math.floor(-reach / scale) + 1
    args = [scale * (k - ratio) for k in range(start, 2 - start)]
    if mode == "linear":
        weights = np.clip(1 - np.abs(args), 0, 1)
    else:
        weights = np.array([_kernel_value(t, a) for t in args])
    return weights / weights.sum()


def interpolation_matrix(ctx, mode: str, size_in: int, size_out: int, scale: float,
                         transform: str, roi=(0.0, 1.0)) -> np.ndarray:
    """The (size_out, size_in) weights of linear or cubic resizing along one axis: taps
    beyond the input read its edge, or (exclude_outside) drop out with the rest rescaled."""
    a = float(ctx.attr("cubic_coeff_a", -0.75))
    exclude = bool(ctx.attr("exclude_outside", 0))
    antialias = bool(ctx.attr("antialias", 0))
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        x = _source(transform, i, scale, size_in, size_out, roi)
        base = math.ceil(x) - 1  # the tap below x (x itself when x is whole)
        weights = _taps(mode, x - base, scale, a, antialias)
        index = base + np.arange(len(weights)) - (len(weights) // 2 - 1)
        if exclude:
            weights = np.where((index < 0) | (index >= size_in), 0.0, weights)
            weights = weights / (weights.sum() or 1.0)
        np.add.at(matrix[i], np.clip(index, 0, size_in - 1), weights)
    return matrix


def _along(x, matrix: np.ndarray, axis: int):
    """x with its axis `axis` mapped through `matrix` (output, input)."""
    last = x.ndim - 1
    order = list(range(x.ndim))
    order[axis], order[last] = last, axis
    moved = x if axis == last else transpose(x, order)
    out = matmul(moved, constant(matrix.T.astype(x.dtype)))
    return out if axis == last else transpose(out, order)


def _regions(ctx, rank: int) -> list[tuple[float, float]]:
    """Each axis's region of interest (tf_crop_and_resize's roi input: starts, then ends,
    of the resized axes)."""
    regions = [(0.0, 1.0)] * rank
    if ctx.attr("coordinate_transformation_mode", "") != "tf_crop_and_resize":
        return regions
    roi = ctx.static(1, "roi", None) if ctx.has_input(1) else None
    if roi is None or roi.size == 0:
        raise ctx.error("tf_crop_and_resize needs the roi input")
    axes = ctx.attr("axes", None)
    axes = range(rank) if axes is None else [axis_of(ctx, a, rank) for a in axes]
    axes = list(axes)
    roi = [float(v) for v in np.asarray(roi, dtype=np.float64).reshape(-1)]
    if len(roi) != 2 * len(axes):
        raise ctx.error(f"roi {roi} must hold a start and an end for each of the axes {axes}")
    for k, axis in enumerate(axes):
        regions[axis] = (roi[k], roi[len(axes) + k])
    return regions


def _extrapolated(x, axis: int, outside: np.ndarray, value: float):
    """x with the outputs along `axis` whose source lies outside the input set to `value`
    (tf_crop_and_resize's extrapolation_value)."""
    if not outside.any():
        return x
    mask = outside.reshape((-1,) + (1,) * (x.ndim - 1 - axis))
    return where(constant(mask), value, x)


@converter("Resize")
def resize(ctx):
    mode = ctx.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic"):
        raise ctx.error(f"unknown mode {mode!r}")
    x = ctx.input(0)
    if mode != "nearest":
        require_float(ctx, x)
    out_shape, factors = _sizes_and_scales(ctx, x.shape)
    transform = ctx.attr("coordinate_transformation_mode", "half_pixel")
    rounding = ctx.attr("nearest_mode", "round_prefer_floor")
    regions = _regions(ctx, x.ndim)
    fill = float(ctx.attr("extrapolation_value", 0.0))
    for axis, (size_in, size_out, scale) in enumerate(zip(x.shape, out_shape, factors)):
        roi = regions[axis]
        if size_out == size_in and scale == 1.0 and roi == (0.0, 1.0):
            continue
        size_in = _static(ctx, size_in)
        if size_out < 1:
            raise ctx.error(f"axis {axis} of {shape_str(x.shape)} would be resized to "
                            f"{size_out}")
        if mode != "nearest":
            x = _along(x, interpolation_matrix(ctx, mode, size_in, size_out, scale,
                                               transform, roi), axis)
        else:
            ids = nearest_indices(size_in, size_out, scale, transform, rounding, roi)
            if not np.array_equal(ids, np.arange(size_in)):
                x = take(x, ctx.constant(ids), axis)
        if transform == "tf_crop_and_resize":
            sources = np.array([_source(transform, i, scale, size_in, size_out, roi)
                                for i in range(size_out)])
            x = _extrapolated(x, axis, (sources < 0) | (sources > size_in - 1), fill)
    return x
