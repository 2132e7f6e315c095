"""Composite functions: neural-network functions composed of primitive ops, so their
gradients, fusion and lowering come from the primitives: softmax, losses, dropout
(the normalizations are in graphc/ops/norm.py)."""

from __future__ import annotations

import itertools

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.elementwise import abs, equal, exp, log, relu, sub, where
from graphc.ops.indexing import one_hot
from graphc.ops.leaf import operands
from graphc.ops.random import random_uniform
from graphc.ops.reduction import max, mean, sum
from graphc.ops.shape import stop_gradient
from graphc.shapes import shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "softmax", "log_softmax", "softmax_cross_entropy", "binary_cross_entropy_with_logits",
    "mse_loss", "dropout",
]

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


def softmax_cross_entropy(logits, labels, label_smoothing: float = 0.0) -> Node:
    """Mean over the batch of -log softmax(logits)[label].

    logits: (..., C) float. labels: int class indices of shape (...), or float class
    probabilities of the logits' shape. label_smoothing mixes the targets with uniform.
    """
    logits = _float_input("softmax_cross_entropy", logits)
    (labels,) = operands(labels)
    if logits.ndim < 1:
        raise build_error("softmax_cross_entropy", "logits must have a class axis")
    classes = logits.shape[-1]
    if dtypes.is_int(labels.dtype):
        if labels.shape != logits.shape[:-1]:
            raise build_error("softmax_cross_entropy", f"labels of shape {shape_str(labels.shape)}"
                              f" do not match logits of shape {shape_str(logits.shape)}")
        if not isinstance(classes, int):
            raise build_error("softmax_cross_entropy", "the class axis must have a static size")
        targets = one_hot(labels, classes, logits.dtype)
    elif dtypes.is_float(labels.dtype):
        if labels.shape != logits.shape:
            raise build_error("softmax_cross_entropy", f"probabilities of shape "
                              f"{shape_str(labels.shape)} do not match logits "
                              f"{shape_str(logits.shape)}")
        targets = labels
    else:
        raise build_error("softmax_cross_entropy", f"labels must be int or float, got "
                          f"{labels.dtype.name}", dtype=True)
    if not 0.0 <= label_smoothing < 1.0:
        raise build_error("softmax_cross_entropy", f"label_smoothing must be in [0, 1), got "
                          f"{label_smoothing}")
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / classes
    return -mean(sum(_xlogy(targets, log_softmax(logits)), -1))


def _xlogy(t: Node, log_p: Node) -> Node:
    """t * log_p, 0 where t is 0: a class with no target mass adds nothing even where its
    logit is -inf (a masked logit: log_p = -inf, and 0 * -inf would be NaN). PyTorch's loss
    for class indices is the same; NaN still comes from a NaN logit or a row of only -inf."""
    return where(equal(t, 0.0), 0.0, t * log_p)


def binary_cross_entropy_with_logits(logits, targets) -> Node:
    """Mean of -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], in the stable form."""
    logits = _float_input("binary_cross_entropy_with_logits", logits)
    (targets,) = operands(targets, reference=logits.dtype)
    return mean(relu(logits) - logits * targets
                    + log(1.0 + exp(-abs(logits))))


def mse_loss(prediction, target) -> Node:
    """Mean over all elements of (prediction - target)^2."""
    diff = sub(prediction, target)
    return mean(diff * diff)


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

