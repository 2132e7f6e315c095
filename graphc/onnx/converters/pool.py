"""Pooling: MaxPool and AveragePool (1-D through graphc's 2-D pools over a height of 1),
GlobalAveragePool and GlobalMaxPool (means and maxima over the spatial axes).

ONNX's AveragePool leaves padding out of the divisor by default (count_include_pad=0),
graphc's avg_pool2d counts it (PyTorch's default): the one is the other divided by the
pool of a ones image, the share of each window inside the input. ceil_mode is taken where
it adds no partial window; else it waits for pools with ceil_mode (issue 16)."""

from __future__ import annotations

import math

import numpy as np

from graphc.onnx.converters.common import require_float
from graphc.onnx.converters.window import require_plain, window_of
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.ops.leaf import constant
from graphc.ops.pool import avg_pool2d, max_pool2d
from graphc.ops.reduction import max, mean  # noqa: A004
from graphc.ops.shape import reshape
from graphc.shapes import shape_str


def check_pool(ctx) -> None:
    kernel = ctx.attr("kernel_shape")
    if kernel is None:
        raise ctx.error("kernel_shape is required")
    if len(kernel) not in (1, 2):
        raise Unsupported(f"a {len(kernel)}-D pool (graphc has 1-D and 2-D ones)")
    if ctx.op_type == "MaxPool" and ctx.wants_output(1):
        raise Unsupported("the Indices output of MaxPool")
    dilations = ctx.attr("dilations")
    if dilations is not None and any(d != 1 for d in dilations):
        raise Unsupported(f"dilations {tuple(dilations)} wait for max_pool2d(dilation=) "
                          "(issue 16)")


def _pool(ctx, builder, fill_divisor: bool):
    x = ctx.input(0)
    require_float(ctx, x)
    kernel = tuple(ctx.attr("kernel_shape"))
    if x.ndim != len(kernel) + 2:
        raise ctx.error(f"input {shape_str(x.shape)} does not match kernel_shape {kernel}")
    window = window_of(ctx, tuple(x.shape[2:]), kernel)
    require_plain(ctx, window, ctx.op_type)
    if ctx.attr("ceil_mode", 0):
        _check_ceil(ctx, tuple(x.shape[2:]), window)
    if any(2 * p > k for p, k in zip(window.begins, kernel)):
        raise Unsupported(f"pads {window.begins} of more than half the kernel {kernel}")
    one_d = len(kernel) == 1
    if one_d:
        x = reshape(x, (*x.shape[:2], 1, x.shape[2]))
        kernel, stride, padding = (1, kernel[0]), (1, window.strides[0]), (0, window.begins[0])
    else:
        stride, padding = window.strides, window.begins
    out = builder(x, kernel, stride, padding)
    if fill_divisor and any(padding) and not ctx.attr("count_include_pad", 0):
        spatial = x.shape[2:]
        if not all(isinstance(d, int) for d in spatial):
            raise Unsupported("count_include_pad=0 over symbolic spatial dims")
        ones = constant(np.ones((1, 1, *spatial), dtype=x.dtype))
        out = out / builder(ones, kernel, stride, padding)
    return reshape(out, (*out.shape[:2], out.shape[3])) if one_d else out


def _check_ceil(ctx, spatial, window) -> None:
    """ceil_mode adds a window only where the input does not end on a stride."""
    for d, k, s, p in zip(spatial, window.kernel, window.strides, window.begins):
        if not isinstance(d, int):
            raise Unsupported("ceil_mode over symbolic spatial dims")
        span = d + 2 * p - k
        if math.ceil(span / s) != span // s:
            raise Unsupported("ceil_mode=1 with a partial last window waits for pools with "
                              "ceil_mode (issue 16)")


@converter("MaxPool", check=check_pool)
def max_pool(ctx):
    if ctx.attr("storage_order", 0):
        raise Unsupported("storage_order=1 (it only orders the Indices output)")
    return _pool(ctx, max_pool2d, fill_divisor=False)


@converter("AveragePool", check=check_pool)
def average_pool(ctx):
    return _pool(ctx, avg_pool2d, fill_divisor=True)


def _global(ctx, reduce):
    x = ctx.input(0)
    require_float(ctx, x)
    if x.ndim < 3:
        raise ctx.error(f"needs an (N, C, ...) input with spatial axes, got {shape_str(x.shape)}")
    return reduce(x, tuple(range(2, x.ndim)), keepdims=True)


converter("GlobalAveragePool")(lambda ctx: _global(ctx, mean))
converter("GlobalMaxPool")(lambda ctx: _global(ctx, max))
