"""Normalizations, composed from graphc's reductions and elementwise ops (so they fuse and
differentiate): BatchNormalization (inference: the running statistics, kept as buffers;
training_mode=1: the batch's statistics, and the running ones ONNX's way as outputs),
InstanceNormalization, LayerNormalization over trailing axes, GroupNormalization,
MeanVarianceNormalization and LpNormalization."""

from __future__ import annotations

from graphc.onnx.converters.common import axes_of, axis_of, require_float
from graphc.onnx.registry import converter
from graphc.ops import elementwise as ew
from graphc.ops.reduction import mean, sum  # noqa: A004
from graphc.ops.shape import reshape
from graphc.shapes import shape_str


def standardize(x, axes: tuple[int, ...], eps: float):
    """(x - mean) / sqrt(var + eps) over axes (the biased variance), with the mean and
    1 / sqrt(var + eps) (keepdims)."""
    mu = mean(x, axes, keepdims=True)
    centered = x - mu
    inv_std = 1.0 / ew.sqrt(mean(centered * centered, axes, keepdims=True) + eps)
    return centered * inv_std, mu, inv_std


def per_channel(ctx, value, x, what: str):
    """A (C,) value shaped to broadcast over x's channel axis 1."""
    channels = x.shape[1]
    if value.shape != (channels,):
        raise ctx.error(f"{what} must have shape ({channels},) for X {shape_str(x.shape)}, got "
                        f"{shape_str(value.shape)}")
    return reshape(value, (channels,) + (1,) * (x.ndim - 2))


def _training_batch_norm(ctx, x, scale, bias, running_mean, running_var, eps: float):
    """Y from the batch's mean and biased variance over every axis but 1, and the running
    statistics as ONNX defines them: input * momentum + batch statistic * (1 - momentum),
    with the biased variance (PyTorch's momentum is 1 - ONNX's, and it keeps the unbiased
    variance: graphc's own gc.batch_norm follows PyTorch)."""
    axes = (0,) + tuple(range(2, x.ndim))
    batch_mean = mean(x, axes)
    centered = x - per_channel(ctx, batch_mean, x, "the mean")
    batch_var = mean(centered * centered, axes)
    y = centered * per_channel(ctx, scale / ew.sqrt(batch_var + eps), x, "scale") + \
        per_channel(ctx, bias, x, "B")
    momentum = float(ctx.attr("momentum", 0.9))
    outputs = (y, running_mean * momentum + batch_mean * (1.0 - momentum),
               running_var * momentum + batch_var * (1.0 - momentum))
    return outputs[:len(ctx.node.output)]


@converter("BatchNormalization")
def batch_norm(ctx):
    x = ctx.input(0)
    require_float(ctx, x)
    if x.ndim < 2:
        raise ctx.error(f"X must be (N, C, ...), got {shape_str(x.shape)}")
    scale, bias = ctx.input(1), ctx.input(2)
    running_mean, running_var = ctx.input(3, role="buffer"), ctx.input(4, role="buffer")
    eps = float(ctx.attr("epsilon", 1e-5))
    if ctx.attr("training_mode", 0):
        return _training_batch_norm(ctx, x, scale, bias, running_mean, running_var, eps)
    # y = (x - mean) * scale / sqrt(var + eps) + bias, as x * a + c over (C,) values
    a = scale / ew.sqrt(running_var + eps)
    c = bias - running_mean * a
    return x * per_channel(ctx, a, x, "scale") + per_channel(ctx, c, x, "B")


@converter("InstanceNormalization")
def instance_norm(ctx):
    x = ctx.input(0)
    require_float(ctx, x)
    if x.ndim < 3:
        raise ctx.error(f"X must be (N, C, D1, ...), got {shape_str(x.shape)}")
    y, _, _ = standardize(x, tuple(range(2, x.ndim)), float(ctx.attr("epsilon", 1e-5)))
    return y * per_channel(ctx, ctx.input(1), x, "scale") + \
        per_channel(ctx, ctx.input(2), x, "B")


@converter("LayerNormalization")
def layer_norm(ctx):
    x = ctx.input(0)
    require_float(ctx, x)
    axis = axis_of(ctx, ctx.attr("axis", -1), x.ndim)
    axes = tuple(range(axis, x.ndim))
    y, mu, inv_std = standardize(x, axes, float(ctx.attr("epsilon", 1e-5)))
    for i, what in ((1, "Scale"), (2, "B")):
        value = ctx.input(i)
        if value is None:
            continue
        if value.ndim > len(axes):
            raise ctx.error(f"{what} {shape_str(value.shape)} has more axes than the "
                            f"normalized ones of X {shape_str(x.shape)}")
        y = y * value if i == 1 else y + value
    return [y, mu, inv_std]


@converter("GroupNormalization")
def group_norm(ctx):
    x = ctx.input(0)
    require_float(ctx, x)
    groups = ctx.attr("num_groups")
    channels = x.shape[1] if x.ndim >= 2 else None
    if not isinstance(groups, int) or groups < 1 or not isinstance(channels, int) \
            or channels % groups:
        raise ctx.error(f"num_groups {groups!r} must divide the {channels} channels of X "
                        f"{shape_str(x.shape)}")
    spatial = x.shape[2:]
    grouped = reshape(x, (x.shape[0], groups, channels // groups, *spatial))
    y, _, _ = standardize(grouped, tuple(range(2, grouped.ndim)),
                          float(ctx.attr("epsilon", 1e-5)))
    scale, bias = ctx.input(1), ctx.input(2)
    if ctx.opset >= 21:  # scale and bias per channel
        y = reshape(y, x.shape)
        return y * per_channel(ctx, scale, x, "scale") + per_channel(ctx, bias, x, "bias")
    # opset 18: scale and bias per group
    for value, what in ((scale, "scale"), (bias, "bias")):
        if value.shape != (groups,):
            raise ctx.error(f"{what} must have shape ({groups},), got {shape_str(value.shape)}")
    shape = (groups,) + (1,) * (grouped.ndim - 2)
    y = y * reshape(scale, shape) + reshape(bias, shape)
    return reshape(y, x.shape)


@converter("MeanVarianceNormalization")
def mean_variance_norm(ctx):
    x = ctx.input(0)
    require_float(ctx, x)
    axes = axes_of(ctx, ctx.attr("axes", (0, 2, 3)), x.ndim)
    centered = x - mean(x, axes, keepdims=True)
    std = ew.sqrt(mean(centered * centered, axes, keepdims=True))
    return centered / (std + 1e-9)  # ONNX's function body adds 1e-9 to the deviation


@converter("LpNormalization")
def lp_norm(ctx):
    x = ctx.input(0)
    require_float(ctx, x)
    axis = axis_of(ctx, ctx.attr("axis", -1), x.ndim)
    p = ctx.attr("p", 2)
    if p == 1:
        norm = sum(ew.abs(x), axis, keepdims=True)
    elif p == 2:
        norm = ew.sqrt(sum(x * x, axis, keepdims=True))
    else:
        raise ctx.error(f"p must be 1 or 2, got {p}")
    return ew.where(ew.equal(norm, 0.0), 0.0, x / norm)  # a zero vector stays zero


@converter("RMSNormalization")
def rms_norm(ctx):
    x = ctx.input(0)
    require_float(ctx, x)
    axis = axis_of(ctx, ctx.attr("axis", -1), x.ndim)
    axes = tuple(range(axis, x.ndim))
    eps = float(ctx.attr("epsilon", 1e-5))
    return x / ew.sqrt(mean(x * x, axes, keepdims=True) + eps) * ctx.input(1)
