"""Activation ONNX ops. Those graphc has as ops map onto them (LeakyRelu, Gelu, Softmax,
LogSoftmax); the rest are composed from graphc's elementwise ops, so they fuse and get
gradients from their pieces. Each composition keeps exp() off large inputs of branches
that `where` discards (exp(min(x, 0))), so no discarded inf turns a gradient into NaN.

Composed until the builders of issue 16 land: Elu, Selu, Celu, Softplus, Softsign, Mish,
HardSigmoid, HardSwish (gc.elu, gc.softplus, ... then replace these compositions)."""

from __future__ import annotations

from graphc.onnx.converters.common import axis_of, require_float, unidirectional
from graphc.onnx.registry import converter
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


def _negative_part_exp(x):
    """exp(x) where x <= 0, else 1: the exp of an ELU-like branch, finite everywhere."""
    return ew.exp(ew.minimum(x, 0.0))


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
    x = _float(ctx)
    alpha = float(ctx.attr("alpha", 1.0))
    return where(ew.greater(x, 0.0), x, alpha * (_negative_part_exp(x) - 1.0))


@converter("Selu")
def selu(ctx):
    x = _float(ctx)
    alpha = float(ctx.attr("alpha", 1.67326319217681884765625))
    gamma = float(ctx.attr("gamma", 1.05070102214813232421875))
    return gamma * where(ew.greater(x, 0.0), x, alpha * (_negative_part_exp(x) - 1.0))


@converter("Celu")
def celu(ctx):
    x = _float(ctx)
    alpha = float(ctx.attr("alpha", 1.0))
    negative = alpha * (ew.exp(ew.minimum(x, 0.0) / alpha) - 1.0)
    return where(ew.greater(x, 0.0), x, negative)


def softplus_of(x):
    """log(1 + exp(x)) in the stable form relu(x) + log(1 + exp(-|x|))."""
    return ew.relu(x) + ew.log(1.0 + ew.exp(-ew.abs(x)))


@converter("Softplus")
def softplus(ctx):
    return softplus_of(_float(ctx))


@converter("Softsign")
def softsign(ctx):
    x = _float(ctx)
    return x / (1.0 + ew.abs(x))


@converter("Mish")
def mish(ctx):
    x = _float(ctx)
    return x * ew.tanh(softplus_of(x))


@converter("HardSigmoid")
def hard_sigmoid(ctx):
    x = _float(ctx)
    alpha, beta = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    return ew.clip(x * alpha + beta, 0.0, 1.0)


@converter("HardSwish")
def hard_swish(ctx):
    x = _float(ctx)
    return x * ew.clip(x * (1.0 / 6.0) + 0.5, 0.0, 1.0)


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
