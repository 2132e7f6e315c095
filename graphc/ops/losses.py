"""Loss functions with PyTorch's semantics (torch.nn.functional's names, arguments,
defaults and reductions), composed of primitive ops so their gradients, fusion and
lowering come from the primitives.

reduction: "mean" (the default), "sum" or "none" (the per-element or per-sample losses);
kl_div also takes "batchmean". Class-index losses (nll_loss, cross_entropy) take the
classes on axis 1 as PyTorch does ((N, C) or (N, C, d1, ...), or (C,) unbatched), a
`weight` per class, and `ignore_index` (those targets add nothing, and the mean divides
by the summed weights of the others); cross_entropy also takes class probabilities and
`label_smoothing`. softmax_cross_entropy is graphc's form with the classes last."""

from __future__ import annotations

import warnings

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.composite import log_softmax
from graphc.ops.elementwise import (
    abs,
    cast,
    equal,
    exp,
    log,
    maximum,
    relu,
    sub,
    where,
)
from graphc.ops.indexing import one_hot
from graphc.ops.leaf import operands
from graphc.ops.reduction import mean, sum
from graphc.ops.shape import reshape, transpose
from graphc.shapes import broadcast, dims_equal, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "nll_loss", "cross_entropy", "softmax_cross_entropy", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "kl_div",
]

REDUCTIONS = ("mean", "sum", "none")


# ----- shared pieces ----------------------------------------------------------------------
def _float_input(op: str, x) -> Node:
    (x,) = operands(x)
    if not dtypes.is_float(x.dtype):
        raise build_error(op, f"needs a float input, got {x.dtype.name}", dtype=True)
    return x


def _check_reduction(op: str, reduction: str, allowed=REDUCTIONS) -> None:
    if reduction not in allowed:
        raise build_error(op, f"reduction must be one of {list(allowed)}, got {reduction!r}")


def _reduce(loss: Node, reduction: str) -> Node:
    if reduction == "none":
        return loss
    return sum(loss) if reduction == "sum" else mean(loss)


def _same_shape(a, b) -> bool:
    return len(a) == len(b) and all(dims_equal(x, y) for x, y in zip(a, b))


def _pair(op: str, input, target) -> tuple[Node, Node]:
    """(input, target) as floats of one dtype; a target of another shape broadcasts with
    PyTorch's warning (it is rarely what was meant)."""
    input = _float_input(op, input)
    (target,) = operands(target, reference=input.dtype)
    if target.dtype != input.dtype:  # int or bool targets, or the other float width
        target = cast(target, input.dtype)
    if not _same_shape(input.shape, target.shape):
        try:
            broadcast(input.shape, target.shape)
        except ValueError:
            raise build_error(op, f"target {shape_str(target.shape)} does not broadcast with "
                              f"input {shape_str(input.shape)}") from None
        warnings.warn(f"{op}: using a target size {shape_str(target.shape)} that is different "
                      f"from the input size {shape_str(input.shape)}; they broadcast, which "
                      "is likely not what was meant", UserWarning, stacklevel=3)
    return input, target


def _as_dtype(value, dtype) -> Node:
    """A weight as a graph value of the input's dtype (a float64 array or list given for
    float32 logits is cast, instead of promoting the loss to float64)."""
    (value,) = operands(value, reference=dtype)
    return value if value.dtype == dtype else cast(value, dtype)


def _xlogy(t: Node, log_p: Node) -> Node:
    """t * log_p, 0 where t is 0: a class with no target mass adds nothing even where its
    logit is -inf (a masked logit: log_p = -inf, and 0 * -inf would be NaN). PyTorch's loss
    for class indices is the same; NaN still comes from a NaN logit or a row of only -inf."""
    return where(equal(t, 0.0), 0.0, t * log_p)


def _classes_last(x: Node) -> Node:
    """(N, C, d1, ...) -> (N, d1, ..., C); (C,) and (N, C) unchanged."""
    if x.ndim <= 2:
        return x
    return transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))


def _class_weight(op: str, weight, classes, dtype) -> Node | None:
    if weight is None:
        return None
    weight = _as_dtype(weight, dtype)
    if weight.ndim != 1 or not dims_equal(weight.shape[0], classes):
        raise build_error(op, f"weight must have shape ({classes},) (one per class), got "
                          f"{shape_str(weight.shape)}")
    return weight


# ----- class-index losses -----------------------------------------------------------------
def _class_loss(op: str, log_p: Node, target: Node, weight: Node | None, ignore_index: int,
                reduction: str, label_smoothing: float) -> Node:
    """PyTorch's nll_loss (label_smoothing 0) and its label-smoothed cross entropy over
    class-last log-probabilities `log_p` (..., C) and int targets (...)."""
    classes = log_p.shape[-1]
    if not isinstance(classes, int):
        raise build_error(op, "the class axis must have a static size")
    if not _same_shape(target.shape, log_p.shape[:-1]):
        raise build_error(op, f"class-index target of shape {shape_str(target.shape)} does "
                          f"not match the input's shape without its class axis, "
                          f"{shape_str(log_p.shape[:-1])}")
    hot = one_hot(target, classes, log_p.dtype, ignore_index)  # an ignored target: zeros
    hot_weight = hot if weight is None else hot * weight  # w[y] in the target's column
    loss = -sum(where(equal(hot, 0.0), 0.0, hot_weight * log_p), -1)  # ignored: adds 0
    if label_smoothing:
        spread = log_p if weight is None else log_p * weight
        ignored = equal(sum(hot, -1), 0.0)
        smooth = where(ignored, 0.0, -sum(spread, -1))
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / classes) * smooth
    if reduction == "none":
        return loss
    if reduction == "sum":
        return sum(loss)
    return sum(loss) / sum(hot_weight)  # 0/0 = NaN when every target is ignored


def nll_loss(input, target, weight=None, ignore_index: int = -100,
             reduction: str = "mean") -> Node:
    """-input[n, target[n]] * weight[target[n]] per sample, from log-probabilities with
    the classes on axis 1 ((N, C), (N, C, d1, ...) or (C,)) and int targets ((N,),
    (N, d1, ...) or ()); "mean" divides by the summed weights of the targets that are not
    ignore_index. A target out of [0, C) other than ignore_index raises at call time."""
    input = _float_input("nll_loss", input)
    (target,) = operands(target)
    _check_reduction("nll_loss", reduction)
    if input.ndim < 1:
        raise build_error("nll_loss", "input must have a class axis")
    if not dtypes.is_int(target.dtype):
        raise build_error("nll_loss", f"target must be int class indices, got "
                          f"{target.dtype.name}", dtype=True)
    log_p = _classes_last(input)
    weight = _class_weight("nll_loss", weight, log_p.shape[-1], input.dtype)
    return _class_loss("nll_loss", log_p, target, weight, ignore_index, reduction, 0.0)


def _probability_loss(op: str, logits: Node, target: Node, axis: int, weight: Node | None,
                      reduction: str, label_smoothing: float) -> Node:
    """Cross entropy against class probabilities (PyTorch's: the mean divides by the
    number of samples, weights or not)."""
    classes = logits.shape[axis]
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / classes
    log_p = log_softmax(logits, axis)
    if weight is not None:
        shape = [1] * logits.ndim
        shape[axis] = classes
        target = target * reshape(weight, tuple(shape))
    loss = -sum(_xlogy(target, log_p), axis)
    return _reduce(loss, reduction)


def _check_smoothing(op: str, label_smoothing) -> float:
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise build_error(op, f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return float(label_smoothing)


def cross_entropy(input, target, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Node:
    """PyTorch's cross_entropy: log_softmax over the class axis (axis 1, or 0 for a (C,)
    input) then nll_loss for int class targets, or -sum(p * log_softmax) for float class
    probabilities of the input's shape. label_smoothing mixes the targets with uniform
    (for class targets, PyTorch's weighted form); weight and ignore_index as nll_loss's
    (ignore_index applies to class targets only)."""
    input = _float_input("cross_entropy", input)
    (target,) = operands(target)
    _check_reduction("cross_entropy", reduction)
    label_smoothing = _check_smoothing("cross_entropy", label_smoothing)
    if input.ndim < 1:
        raise build_error("cross_entropy", "input must have a class axis")
    axis = 0 if input.ndim == 1 else 1
    weight = _class_weight("cross_entropy", weight, input.shape[axis], input.dtype)
    if dtypes.is_float(target.dtype):
        if not _same_shape(target.shape, input.shape):
            raise build_error("cross_entropy", f"class probabilities of shape "
                              f"{shape_str(target.shape)} do not match the input "
                              f"{shape_str(input.shape)}")
        return _probability_loss("cross_entropy", input, target, axis, weight, reduction,
                                 label_smoothing)
    if not dtypes.is_int(target.dtype):
        raise build_error("cross_entropy", f"target must be int class indices or float "
                          f"probabilities, got {target.dtype.name}", dtype=True)
    log_p = log_softmax(_classes_last(input), -1)
    return _class_loss("cross_entropy", log_p, target, weight, ignore_index, reduction,
                       label_smoothing)


def softmax_cross_entropy(logits, labels, label_smoothing: float = 0.0, weight=None,
                          ignore_index: int = -100, reduction: str = "mean") -> Node:
    """cross_entropy with the classes on the LAST axis: logits (..., C) against int class
    indices of shape (...) or float class probabilities of the logits' shape; the mean
    over every position by default. The other options are cross_entropy's."""
    logits = _float_input("softmax_cross_entropy", logits)
    (labels,) = operands(labels)
    _check_reduction("softmax_cross_entropy", reduction)
    label_smoothing = _check_smoothing("softmax_cross_entropy", label_smoothing)
    if logits.ndim < 1:
        raise build_error("softmax_cross_entropy", "logits must have a class axis")
    weight = _class_weight("softmax_cross_entropy", weight, logits.shape[-1], logits.dtype)
    if dtypes.is_int(labels.dtype):
        if not _same_shape(labels.shape, logits.shape[:-1]):
            raise build_error("softmax_cross_entropy", f"labels of shape "
                              f"{shape_str(labels.shape)} do not match logits of shape "
                              f"{shape_str(logits.shape)}")
        return _class_loss("softmax_cross_entropy", log_softmax(logits, -1), labels, weight,
                           ignore_index, reduction, label_smoothing)
    if dtypes.is_float(labels.dtype):
        if not _same_shape(labels.shape, logits.shape):
            raise build_error("softmax_cross_entropy", f"probabilities of shape "
                              f"{shape_str(labels.shape)} do not match logits "
                              f"{shape_str(logits.shape)}")
        return _probability_loss("softmax_cross_entropy", logits, labels, logits.ndim - 1,
                                 weight, reduction, label_smoothing)
    raise build_error("softmax_cross_entropy", f"labels must be int or float, got "
                      f"{labels.dtype.name}", dtype=True)


# ----- binary losses ----------------------------------------------------------------------
def _weighted(op: str, loss: Node, weight) -> Node:
    if weight is None:
        return loss
    weight = _as_dtype(weight, loss.dtype)
    try:
        shape = broadcast(loss.shape, weight.shape)
    except ValueError:
        shape = None
    if shape is None or not _same_shape(shape, loss.shape):
        raise build_error(op, f"weight of shape {shape_str(weight.shape)} does not broadcast "
                          f"to the loss's shape {shape_str(loss.shape)}")
    return loss * weight


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean") -> Node:
    """-w [t log(x) + (1 - t) log(1 - x)] for probabilities x, each log clamped at -100 as
    PyTorch does (so x = 0 or 1 gives a finite loss)."""
    input, target = _pair("binary_cross_entropy", input, target)
    _check_reduction("binary_cross_entropy", reduction)
    loss = -(target * maximum(log(input), -100.0)
             + (1.0 - target) * maximum(log(1.0 - input), -100.0))
    return _reduce(_weighted("binary_cross_entropy", loss, weight), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Node:
    """binary_cross_entropy(sigmoid(x), t) in the stable form
    (1 - t) x + lw (log(1 + exp(-|x|)) + max(-x, 0)), lw = 1 + (pos_weight - 1) t;
    pos_weight (one per class, the last axis) weighs the positive targets."""
    input, target = _pair("binary_cross_entropy_with_logits", input, target)
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    softplus_neg = log(1.0 + exp(-abs(input))) + relu(-input)  # log(1 + exp(-x)), stable
    if pos_weight is None:
        loss = (1.0 - target) * input + softplus_neg
    else:
        pos_weight = _as_dtype(pos_weight, input.dtype)
        try:
            broadcast(input.shape, pos_weight.shape)
        except ValueError:
            raise build_error("binary_cross_entropy_with_logits", f"pos_weight of shape "
                              f"{shape_str(pos_weight.shape)} does not broadcast with the "
                              f"input {shape_str(input.shape)} (one per class, the last "
                              "axis)") from None
        log_weight = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * input + log_weight * softplus_neg
    return _reduce(_weighted("binary_cross_entropy_with_logits", loss, weight), reduction)


# ----- regression losses ------------------------------------------------------------------
def mse_loss(input, target, reduction: str = "mean") -> Node:
    """(input - target)^2, by default its mean over all elements."""
    input, target = _pair("mse_loss", input, target)
    _check_reduction("mse_loss", reduction)
    diff = sub(input, target)
    return _reduce(diff * diff, reduction)


def l1_loss(input, target, reduction: str = "mean") -> Node:
    """|input - target| (gradient 0 where they are equal, as PyTorch's)."""
    input, target = _pair("l1_loss", input, target)
    _check_reduction("l1_loss", reduction)
    return _reduce(abs(input - target), reduction)


def _positive(op: str, name: str, value, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            value >= 0 if allow_zero else value > 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise build_error(op, f"{name} must be a number {bound}, got {value!r}")
    return float(value)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0) -> Node:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target); beta=0
    is l1_loss."""
    input, target = _pair("smooth_l1_loss", input, target)
    _check_reduction("smooth_l1_loss", reduction)
    beta = _positive("smooth_l1_loss", "beta", beta, allow_zero=True)
    d = abs(input - target)
    if beta == 0.0:
        return _reduce(d, reduction)
    return _reduce(where(d < beta, (0.5 / beta) * d * d, d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Node:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta): smooth_l1_loss * delta."""
    input, target = _pair("huber_loss", input, target)
    _check_reduction("huber_loss", reduction)
    delta = _positive("huber_loss", "delta", delta, allow_zero=False)
    d = abs(input - target)
    return _reduce(where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)


# ----- distributions ----------------------------------------------------------------------
def kl_div(input, target, reduction: str = "mean", log_target: bool = False) -> Node:
    """KL(target || exp(input)) pointwise from log-probabilities `input`:
    target (log target - input), 0 where target is 0 (log_target=True: the target is
    given as log-probabilities). reduction "batchmean" divides the sum by the batch size
    (the true KL divergence per sample); "mean" divides by the element count, as
    PyTorch does."""
    input, target = _pair("kl_div", input, target)
    _check_reduction("kl_div", reduction, REDUCTIONS + ("batchmean",))
    if log_target:
        loss = exp(target) * (target - input)
    else:
        loss = _xlogy(target, log(target)) - target * input
    if reduction == "batchmean":  # sum / batch size, as the sum of the batch mean
        return sum(mean(loss, 0)) if input.ndim else loss
    return _reduce(loss, reduction)
