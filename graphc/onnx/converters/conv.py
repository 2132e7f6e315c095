"""Conv and ConvTranspose: 1-D and 2-D convolutions onto graphc's conv1d / conv2d and
conv_transpose1d / conv_transpose2d (NCL / NCHW data, ONNX's weight layouts are
PyTorch's), with groups, dilations, strides, asymmetric pads and auto_pad.

ConvTranspose is computed at its full size, (in - 1) * stride + dilation * (k - 1) + 1,
then cropped by its pads and extended by output_padding (the extension receives no
input, only the bias), which covers output_shape and auto_pad as ONNX's reference does."""

from __future__ import annotations

from graphc.onnx.converters.window import window_of
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.ops.conv import add_bias, conv2d
from graphc.ops.conv1d import conv1d
from graphc.ops.conv_transpose import conv_transpose1d, conv_transpose2d
from graphc.ops.pad import pad
from graphc.shapes import shape_str


def check_conv(ctx) -> None:
    """What the attributes alone tell: the spatial rank."""
    kernel = ctx.attr("kernel_shape")
    if kernel is not None and len(kernel) not in (1, 2):
        raise Unsupported(f"a {len(kernel)}-D convolution (graphc has 1-D and 2-D ones)")


def _operands(ctx):
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
    if not all(isinstance(k, int) for k in kernel):
        raise Unsupported(f"a kernel of symbolic size {shape_str(kernel)}")
    group = int(ctx.attr("group", 1))
    if group < 1:
        raise ctx.error(f"group must be positive, got {group}")
    return x, w, b, kernel, group


@converter("Conv", check=check_conv)
def conv(ctx):
    x, w, b, kernel, group = _operands(ctx)
    window = window_of(ctx, tuple(x.shape[2:]), kernel)
    if len(kernel) == 1:
        return conv1d(x, w, b, stride=window.strides[0],
                      padding=(window.begins[0], window.ends[0]),
                      dilation=window.dilations[0], groups=group)
    padding = tuple(zip(window.begins, window.ends))
    return conv2d(x, w, b, stride=window.strides, padding=padding,
                  dilation=window.dilations, groups=group)


def _transpose_crops(ctx, spatial, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(begin, end) of the full transposed output each axis keeps: its pads, or what
    output_shape and auto_pad give (ONNX's reference rules)."""
    rank = len(kernel)
    extra = tuple(ctx.attr("output_padding", (0,) * rank))
    if len(extra) != rank or min(extra, default=0) < 0:
        raise ctx.error(f"output_padding {extra} must be {rank} nonnegative ints")
    if not all(isinstance(d, int) for d in spatial):
        raise Unsupported(f"a transposed convolution over symbolic spatial dims {spatial}")
    full = [(n - 1) * s + (k - 1) * d + 1 for n, s, k, d in zip(spatial, strides, kernel,
                                                               dilations)]
    auto_pad = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise ctx.error(f"unknown auto_pad {auto_pad!r}")
    declared = ctx.attr("output_shape")
    if declared is not None:
        declared = tuple(declared)[-rank:]
        if len(declared) != rank:
            raise ctx.error(f"output_shape {declared} must give {rank} spatial sizes")
    pads = ctx.attr("pads")
    if pads is not None or auto_pad in ("NOTSET", "VALID"):
        pads = tuple(pads or (0,) * 2 * rank) if auto_pad != "VALID" else (0,) * 2 * rank
        if len(pads) != 2 * rank or min(pads) < 0:
            raise ctx.error(f"pads {pads} must be {2 * rank} nonnegative ints")
        begins = pads[:rank]
        sizes = declared or [f + e - p - q for f, e, p, q in zip(full, extra, begins,
                                                                 pads[rank:])]
    else:  # SAME_UPPER / SAME_LOWER: the total padding the output shape leaves
        sizes = declared or [n * s for n, s in zip(spatial, strides)]
        totals = [f + e - o for f, e, o in zip(full, extra, sizes)]
        begins = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in totals]
    crops = [(p, f - p - o) for p, f, o in zip(begins, full, sizes)]
    if any(o < 1 for o in sizes):
        raise ctx.error(f"the output would have the spatial shape {tuple(sizes)}")
    return crops


@converter("ConvTranspose", check=check_conv)
def conv_transpose(ctx):
    x, w, b, kernel, group = _operands(ctx)
    if x.shape[1] != w.shape[0]:
        raise ctx.error(f"X {shape_str(x.shape)} has {x.shape[1]} channels, W "
                        f"{shape_str(w.shape)} takes {w.shape[0]}")
    rank = len(kernel)
    strides = tuple(ctx.attr("strides", (1,) * rank))
    dilations = tuple(ctx.attr("dilations", (1,) * rank))
    if len(strides) != rank or len(dilations) != rank or min(strides + dilations) < 1:
        raise ctx.error(f"strides {strides} and dilations {dilations} must be {rank} "
                        "positive ints")
    crops = _transpose_crops(ctx, tuple(x.shape[2:]), kernel, strides, dilations)
    builder = conv_transpose1d if rank == 1 else conv_transpose2d
    out = builder(x, w, stride=strides[0] if rank == 1 else strides,
                  dilation=dilations[0] if rank == 1 else dilations, groups=group)
    if any(c != (0, 0) for c in crops):
        widths = []
        for begin, end in reversed(crops):  # gc.pad: (before, after) from the last axis
            widths += [-begin, -end]
        out = pad(out, tuple(widths))
    channels = w.shape[1] * group
    return add_bias("ConvTranspose", out, x, w, b, channels)
