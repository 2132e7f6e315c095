"""Conv: 1-D and 2-D convolutions onto graphc's conv1d and conv2d (NCL / NCHW data, OIK /
OIHW weights, as ONNX's), bias included. Grouped, dilated and asymmetrically padded ones
wait for issue 16's conv2d arguments."""

from __future__ import annotations

from graphc.onnx.converters.window import require_plain, window_of
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.ops.conv import conv2d
from graphc.ops.conv1d import conv1d
from graphc.shapes import shape_str


def check_conv(ctx) -> None:
    """What the attributes alone tell: the group count and the spatial rank."""
    group = ctx.attr("group", 1)
    if group != 1:
        raise Unsupported(f"group={group} waits for conv2d(groups=) (issue 16)")
    kernel = ctx.attr("kernel_shape")
    if kernel is not None and len(kernel) not in (1, 2):
        raise Unsupported(f"a {len(kernel)}-D convolution (graphc has 1-D and 2-D ones)")
    dilations = ctx.attr("dilations")
    if dilations is not None and any(d != 1 for d in dilations):
        raise Unsupported(f"dilations {tuple(dilations)} wait for conv2d(dilation=) (issue 16)")


@converter("Conv", check=check_conv)
def conv(ctx):
    x, w, b = ctx.input(0), ctx.input(1), ctx.input(2)
    if x.ndim != w.ndim or x.ndim < 3:
        raise ctx.error(f"X {shape_str(x.shape)} and W {shape_str(w.shape)} must have the same "
                        "rank, at least 3")
    kernel = tuple(w.shape[2:])
    declared = ctx.attr("kernel_shape")
    if declared is not None and tuple(declared) != kernel:
        raise ctx.error(f"kernel_shape {tuple(declared)} contradicts W {shape_str(w.shape)}")
    if len(kernel) not in (1, 2):
        raise Unsupported(f"a {len(kernel)}-D convolution (graphc has 1-D and 2-D ones)")
    window = window_of(ctx, tuple(x.shape[2:]), kernel)
    require_plain(ctx, window, "conv2d")
    if len(kernel) == 1:
        return conv1d(x, w, b, stride=window.strides[0], padding=window.begins[0])
    return conv2d(x, w, b, stride=window.strides, padding=window.begins)
