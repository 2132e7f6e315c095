"""Pooling: MaxPool and AveragePool (1-D through graphc's 2-D pools over a height of 1),
GlobalAveragePool and GlobalMaxPool (means and maxima over the spatial axes).

Strides, dilations (MaxPool), ceil_mode and count_include_pad map onto graphc's pool
arguments. Pads graphc's pools cannot take (asymmetric ones, or more than half the
kernel) are applied by a pad in front (-inf for MaxPool; zeros
for AveragePool, whose count_include_pad=0 divisor is then the pool of a padded ones
image: the share of each window inside the input). Integer max pools run in float64,
which holds int8 through int32 exactly."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.onnx.converters.common import require_float
from graphc.onnx.converters.window import window_of
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.ops.elementwise import cast
from graphc.ops.leaf import constant
from graphc.ops.pad import pad
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
    if ctx.op_type == "AveragePool" and dilations is not None and any(
            d != 1 for d in dilations):
        raise Unsupported(f"dilations {tuple(dilations)}: graphc's avg_pool2d has none "
                          "(as PyTorch's)")


def _explicit(x, begins, ends, value):
    """x padded over its two spatial axes by (begins, ends), filled with `value`."""
    widths = (begins[1], ends[1], begins[0], ends[0])
    return pad(x, widths, value=value) if any(widths) else x


def _pool(ctx, maximum: bool):
    x = ctx.input(0)
    if not maximum or not dtypes.is_int(x.dtype):
        require_float(ctx, x)
    kernel = tuple(ctx.attr("kernel_shape"))
    if x.ndim != len(kernel) + 2:
        raise ctx.error(f"input {shape_str(x.shape)} does not match kernel_shape {kernel}")
    window = window_of(ctx, tuple(x.shape[2:]), kernel)
    strides, dilations = window.strides, window.dilations
    begins, ends = window.begins, window.ends
    one_d = len(kernel) == 1
    if one_d:
        x = reshape(x, (*x.shape[:2], 1, x.shape[2]))
        kernel, strides, dilations = (1, *kernel), (1, *strides), (1, *dilations)
        begins, ends = (0, *begins), (0, *ends)
    ceil_mode = bool(ctx.attr("ceil_mode", 0))
    native = begins == ends and all(2 * p <= k for p, k in zip(begins, kernel))
    padding = begins if native else (0, 0)
    if maximum:
        if ctx.attr("storage_order", 0):
            raise Unsupported("storage_order=1 (it only orders the Indices output)")
        dtype = x.dtype
        if not dtypes.is_float(dtype):  # graphc pools floats: float64 holds these exactly
            if dtype.itemsize > 4:
                raise Unsupported(f"a max pool of {dtype.name} (float64 cannot hold it)")
            x = cast(x, "float64")
        if not native:
            x = _explicit(x, begins, ends, -np.inf)
        out = max_pool2d(x, kernel, strides, padding, dilations, ceil_mode)
        out = out if out.dtype == dtype else cast(out, dtype)
    else:
        include = bool(ctx.attr("count_include_pad", 0))
        if native:
            out = avg_pool2d(x, kernel, strides, padding, ceil_mode, include)
        else:
            spatial = x.shape[2:]
            out = avg_pool2d(_explicit(x, begins, ends, 0.0), kernel, strides, 0, ceil_mode)
            if not include:
                if not all(isinstance(d, int) for d in spatial):
                    raise Unsupported("count_include_pad=0 with asymmetric pads over "
                                      "symbolic spatial dims")
                ones = _explicit(constant(np.ones((1, 1, *spatial), dtype=x.dtype)),
                                 begins, ends, 0.0)
                out = out / avg_pool2d(ones, kernel, strides, 0, ceil_mode)
    return reshape(out, (*out.shape[:2], out.shape[3])) if one_d else out


converter("MaxPool", check=check_pool)(lambda ctx: _pool(ctx, maximum=True))
converter("AveragePool", check=check_pool)(lambda ctx: _pool(ctx, maximum=False))


def _global(ctx, reduce):
    x = ctx.input(0)
    require_float(ctx, x)
    if x.ndim < 3:
        raise ctx.error(f"needs an (N, C, ...) input with spatial axes, got {shape_str(x.shape)}")
    return reduce(x, tuple(range(2, x.ndim)), keepdims=True)


converter("GlobalAveragePool")(lambda ctx: _global(ctx, mean))
converter("GlobalMaxPool")(lambda ctx: _global(ctx, max))
