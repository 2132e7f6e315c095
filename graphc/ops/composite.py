"""Composite functions: neural-network functions composed of primitive ops, so their
gradients, fusion and lowering come from the primitives: softmax, layer norm, dropout
(the losses are in graphc/ops/losses.py)."""

from __future__ import annotations

import itertools

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.elementwise import exp, log, sqrt, where
from graphc.ops.leaf import operands
from graphc.ops.random import random_uniform
from graphc.ops.reduction import max, mean, sum
from graphc.ops.shape import stop_gradient
from graphc.shapes import shape_str

__all__ = [  # the public builders (graphc/dsl.py); the losses are in graphc/ops/losses.py
    "softmax", "log_softmax", "dropout", "layer_norm",
]

_dropout_seeds = itertools.count(1)


def _float_input(op: str, x) -> Node:
    (x,) = operands(x)
    if not dtypes.is_float(x.dtype):
        raise build_error(op, f"needs a float input, got {x.dtype.name}", dtype=True)
    return x


def _shifted(x: Node, axis: int) -> Node:
    """x minus its max along axis (the max held constant for gradients): the stable shift."""
    return x - stop_gradient(max(x, axis, keepdims=True))


def softmax(x, axis: int = -1) -> Node:
    """exp(x) / sum(exp(x)) along axis, computed as exp(x - max) for stability."""
    x = _float_input("softmax", x)
    e = exp(_shifted(x, axis))
    return e / sum(e, axis, keepdims=True)


def log_softmax(x, axis: int = -1) -> Node:
    """x - logsumexp(x) along axis, in the stable shifted form."""
    x = _float_input("log_softmax", x)
    z = _shifted(x, axis)
    return z - log(sum(exp(z), axis, keepdims=True))


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5) -> Node:
    """Normalize over the last axis to zero mean and unit variance (biased), then scale
    by weight and shift by bias (each of the last axis' size, or None)."""
    x = _float_input("layer_norm", x)
    if eps <= 0:
        raise build_error("layer_norm", f"eps must be positive, got {eps}")
    centered = x - mean(x, -1, keepdims=True)
    variance = mean(centered * centered, -1, keepdims=True)
    out = centered / sqrt(variance + eps)
    for name, extra in (("weight", weight), ("bias", bias)):
        if extra is None:
            continue
        (extra,) = operands(extra)
        if extra.shape != x.shape[-1:]:
            raise build_error("layer_norm", f"{name} of shape {shape_str(extra.shape)} does not "
                              f"match the last axis of {shape_str(x.shape)}")
        out = out * extra if name == "weight" else out + extra
    return out


def dropout(x, rate: float, seed: int | None = None) -> Node:
    """Zero each element with probability `rate`, scale survivors by 1/(1-rate).

    The mask is new at every call of the compiled function and the same in every backend;
    its gradient uses the same mask. Give distinct seeds to distinct dropout layers (the
    default draws a fresh one per call of this function)."""
    x = _float_input("dropout", x)
    if not 0.0 <= rate <= 1.0:
        raise build_error("dropout", f"rate must be in [0, 1], got {rate}")
    if rate == 0.0:
        return x
    if rate == 1.0:
        return x * 0.0
    seed = next(_dropout_seeds) if seed is None else seed
    keep = random_uniform(x.shape, seed, x.dtype) >= rate
    scale, zero = operands(1.0 / (1.0 - rate), 0.0, reference=x.dtype)
    return x * where(keep, scale, zero)

