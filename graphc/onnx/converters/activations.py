"""Activation ONNX ops, onto graphc's activation builders (gc.elu, gc.selu, gc.celu,
gc.softplus, gc.softsign, gc.mish, gc.hardswish, gc.hardsigmoid, gc.leaky_relu, gc.gelu,
softmax, ...); the few without one (PRelu, ThresholdedRelu, Shrink, Hardmax, HardSigmoid
and Selu with non-default constants) are composed from elementwise ops."""

from __future__ import annotations

from graphc.onnx.converters.common import axis_of, require_float, unidirectional
from graphc.onnx.registry import converter
from graphc.ops import activations as act
from graphc.ops import elementwise as ew
from graphc.ops.composite import log_softmax, softmax
from graphc.ops.elementwise import where
from graphc.ops.indexing import one_hot
from graphc.ops.reduction import argmax
from graphc.ops.shape import transpose


def _float(ctx):
    x = ctx.input(0)
    require_float(ctx, x)
    return x


@converter("LeakyRelu")
def leaky_relu(ctx):
    return ew.leaky_relu(_float(ctx), ctx.attr("alpha", 0.01))


@converter("PRelu")
def prelu(ctx):
    x, slope = _float(ctx), ctx.input(1)
    unidirectional(ctx, slope, x, "slope")
    return where(ew.less(x, 0.0), x * slope, x)


@converter("ThresholdedRelu")
def thresholded_relu(ctx):
    x = _float(ctx)
    return where(ew.greater(x, float(ctx.attr("alpha", 1.0))), x, 0.0)


@converter("Elu")
def elu(ctx):
    return act.elu(_float(ctx), float(ctx.attr("alpha", 1.0)))


_SELU_ALPHA, _SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


@converter("Selu")
def selu(ctx):
    """gc.selu for ONNX's default constants (float32 roundings of SELU's); others scale
    an ELU."""
    x = _float(ctx)
    alpha = float(ctx.attr("alpha", _SELU_ALPHA))
    gamma = float(ctx.attr("gamma", _SELU_GAMMA))
    if (alpha, gamma) == (_SELU_ALPHA, _SELU_GAMMA):
        return act.selu(x)
    return gamma * act.elu(x, alpha)


@converter("Celu")
def celu(ctx):
    return act.celu(_float(ctx), float(ctx.attr("alpha", 1.0)))


@converter("Softplus")
def softplus(ctx):
    return act.softplus(_float(ctx))


@converter("Softsign")
def softsign(ctx):
    return act.softsign(_float(ctx))


@converter("Mish")
def mish(ctx):
    return act.mish(_float(ctx))


@converter("HardSigmoid")
def hard_sigmoid(ctx):
    """gc.hardsigmoid is PyTorch's (alpha 1/6, beta 1/2); ONNX's default alpha is 0.2, so
    other constants clip the line themselves."""
    x = _float(ctx)
    alpha, beta = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    if (alpha, beta) == (1.0 / 6.0, 0.5):
        return act.hardsigmoid(x)
    return ew.clip(x * alpha + beta, 0.0, 1.0)


@converter("HardSwish")
def hard_swish(ctx):
    return act.hardswish(_float(ctx))


@converter("Shrink")
def shrink(ctx):
    x = _float(ctx)
    bias, lambd = float(ctx.attr("bias", 0.0)), float(ctx.attr("lambd", 0.5))
    return where(ew.less(x, -lambd), x + bias, where(ew.greater(x, lambd), x - bias, 0.0))


@converter("Gelu")
def gelu(ctx):
    approximate = ctx.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.error(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return ew.gelu(_float(ctx), approximate)


@converter("Softmax")
def softmax_(ctx):
    x = _float(ctx)
    return softmax(x, axis_of(ctx, ctx.attr("axis", -1), x.ndim))


@converter("LogSoftmax")
def log_softmax_(ctx):
    x = _float(ctx)
    return log_softmax(x, axis_of(ctx, ctx.attr("axis", -1), x.ndim))


@converter("Hardmax")
def hardmax(ctx):
    x = _float(ctx)
    axis = axis_of(ctx, ctx.attr("axis", -1), x.ndim)
    size = x.shape[axis]
    if not isinstance(size, int):
        raise ctx.unsupported(f"its axis {axis} has the symbolic size {size}")
    last = x.ndim - 1
    order = list(range(x.ndim))
    order[axis], order[last] = last, axis
    moved = transpose(x, order)
    hot = one_hot(argmax(moved, -1), size, x.dtype)  # the first maximum, as ONNX
    return transpose(hot, order)


@converter("Swish")
def swish(ctx):
    x = _float(ctx)
    alpha = float(ctx.attr("alpha", 1.0))
    return ew.silu(x) if alpha == 1.0 else x * ew.sigmoid(x * alpha)
