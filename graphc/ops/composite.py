"""Composite functions: neural-network functions composed of primitive ops, so their
gradients, fusion and lowering come from the primitives: softmax and dropout (the losses
are in graphc/ops/losses.py, the normalizations in graphc/ops/norm.py)."""

from __future__ import annotations

import itertools

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.elementwise import exp, log, where
from graphc.ops.leaf import operands
from graphc.ops.random import random_uniform
from graphc.ops.reduction import max, sum
from graphc.ops.shape import stop_gradient

__all__ = ["softmax", "log_softmax", "dropout"]  # the public builders (graphc/dsl.py)

_dropout_seeds = itertools.count(1)


def fresh_dropout_seed() -> int:
    """A seed no dropout built by a function of graphc.ops has drawn yet (dropout's and
    attention's default)."""
    return next(_dropout_seeds)


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
    seed = fresh_dropout_seed() if seed is None else seed
    keep = random_uniform(x.shape, seed, x.dtype) >= rate
    scale, zero = operands(1.0 / (1.0 - rate), 0.0, reference=x.dtype)
    return x * where(keep, scale, zero)

