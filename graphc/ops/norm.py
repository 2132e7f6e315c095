"""Normalization functions, PyTorch's (torch.nn.functional): layer_norm and rms_norm over
trailing axes, batch_norm, group_norm and instance_norm, composed of reductions and
elementwise ops (so gradients, fusion and native code come from those).

In training mode batch_norm and instance_norm given running statistics return a value
carrying their update (graphc/ops/state.py): a compiled step that computes the output
also writes running_mean, running_var (and num_batches_tracked) as PyTorch does:
new = (1 - momentum) * old + momentum * batch statistic, the variance unbiased
(n / (n - 1)); momentum=None is the cumulative average, factor 1 / num_batches_tracked.
"""

from __future__ import annotations

import numbers

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.elementwise import cast, sqrt
from graphc.ops.leaf import dim_value, operands
from graphc.ops.reduction import mean
from graphc.ops.shape import reshape
from graphc.ops.state import attach_update
from graphc.shapes import as_dim, shape_str, size

__all__ = [  # the public builders (graphc/dsl.py)
    "layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm",
]


def _float_input(op: str, x) -> Node:
    (x,) = operands(x)
    if not dtypes.is_float(x.dtype):
        raise build_error(op, f"needs a float input, got {x.dtype.name}", dtype=True)
    return x


def _check_eps(op: str, eps) -> float:
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not eps > 0:
        raise build_error(op, f"eps must be positive, got {eps!r}")
    return float(eps)


def _is_shape(value) -> bool:
    """An int or a sequence of ints (a normalized_shape), not a value."""
    if isinstance(value, (numbers.Integral,)) and not isinstance(value, bool):
        return True
    return isinstance(value, (tuple, list)) and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in value)


def _trailing_axes(op: str, x: Node, normalized_shape, weight) -> tuple[int, ...]:
    """The axes a layer/rms norm normalizes: normalized_shape's, else the weight's, else
    the last; refused unless they are x's trailing dims."""
    if normalized_shape is not None:
        if not _is_shape(normalized_shape):
            raise build_error(op, f"normalized_shape must be an int or a tuple of ints, got "
                              f"{normalized_shape!r}")
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) \
            else tuple(normalized_shape)
        what = "normalized_shape"
    elif weight is not None:
        (weight,) = operands(weight)
        shape, what = weight.shape, "weight of shape"
    else:
        shape, what = x.shape[-1:], "normalized_shape"
    k = len(shape)
    if k == 0 or k > x.ndim or tuple(x.shape[x.ndim - k:]) != tuple(shape):
        raise build_error(op, f"{what} {shape_str(tuple(shape))} does not match the trailing "
                          f"dims of the input {shape_str(x.shape)}")
    return tuple(range(x.ndim - k, x.ndim))


def _affine(op: str, out: Node, weight, bias, shape, where: str, view=None) -> Node:
    """out * weight + bias, each (if not None) of `shape`, reshaped to `view` (a shape
    that broadcasts over out, e.g. (C, 1, 1) for channels) if given."""
    for name, extra in (("weight", weight), ("bias", bias)):
        if extra is None:
            continue
        (extra,) = operands(extra, reference=out.dtype)
        if not dtypes.is_float(extra.dtype):
            raise build_error(op, f"{name} must be float, got {extra.dtype.name}", dtype=True)
        if tuple(extra.shape) != tuple(shape):
            raise build_error(op, f"{name} of shape {shape_str(extra.shape)} does not match "
                              f"{where} {shape_str(tuple(shape))}")
        if view is not None:
            extra = reshape(extra, view)
        out = out * extra if name == "weight" else out + extra
    return out


def _standardized(x: Node, axes, eps: float) -> tuple[Node, Node, Node]:
    """(x - mean) / sqrt(var + eps) over axes (biased variance), the mean and the variance
    (keepdims)."""
    average = mean(x, axes, keepdims=True)
    centered = x - average
    variance = mean(centered * centered, axes, keepdims=True)
    return centered / sqrt(variance + eps), average, variance


# ----- over trailing axes ---------------------------------------------------------------------
def layer_norm(x, normalized_shape=None, weight=None, bias=None, eps: float = 1e-5) -> Node:
    """torch.nn.functional.layer_norm: normalize over the trailing dims normalized_shape
    (an int or tuple; default: the weight's shape, else the last axis) to zero mean and
    unit (biased) variance, then scale by weight and shift by bias (each of that shape).

    graphc's older order layer_norm(x, weight, bias, eps) still works: a graph value or
    array where normalized_shape goes is the weight, and the arguments shift."""
    if normalized_shape is not None and not _is_shape(normalized_shape):
        normalized_shape, weight, bias, eps = None, normalized_shape, weight, \
            (eps if bias is None else bias)
        if isinstance(weight, numbers.Real) and not isinstance(weight, bool):
            raise build_error("layer_norm", f"bias must be a value, got {weight!r}")
    x = _float_input("layer_norm", x)
    eps = _check_eps("layer_norm", eps)
    axes = _trailing_axes("layer_norm", x, normalized_shape, weight)
    out = _standardized(x, axes[0] if len(axes) == 1 else axes, eps)[0]
    shape = x.shape[axes[0]:]
    return _affine("layer_norm", out, weight, bias, shape, "the normalized dims")


def rms_norm(x, normalized_shape=None, weight=None, eps: float | None = None) -> Node:
    """torch.nn.functional.rms_norm: x / sqrt(mean(x**2) + eps) * weight over the trailing
    dims normalized_shape (default: the weight's shape, else the last axis); eps None is
    the dtype's machine epsilon, as in PyTorch. A value where normalized_shape goes is the
    weight (as for layer_norm)."""
    if normalized_shape is not None and not _is_shape(normalized_shape):
        normalized_shape, weight = None, normalized_shape
    x = _float_input("rms_norm", x)
    eps = float(np.finfo(x.dtype).eps) if eps is None else _check_eps("rms_norm", eps)
    axes = _trailing_axes("rms_norm", x, normalized_shape, weight)
    out = x / sqrt(mean(x * x, axes, keepdims=True) + eps)
    return _affine("rms_norm", out, weight, None, x.shape[axes[0]:], "the normalized dims")


# ----- over the batch ---------------------------------------------------------------------------
def _channels(op: str, x: Node, least: int = 2) -> int:
    if x.ndim < least:
        raise build_error(op, f"expected an input (N, C, ...) of at least {least} dims, got "
                          f"{shape_str(x.shape)}")
    channels = x.shape[1]
    if not isinstance(channels, int):
        raise build_error(op, f"the channel axis must have a static size, got {channels}")
    return channels


def _per_channel(x: Node) -> tuple[int, ...]:
    """The shape a (C,) value takes to broadcast over x = (N, C, ...)."""
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def _stat(op: str, name: str, value, dtype, channels: int, updated: bool) -> Node:
    """A running statistic: a (C,) value of x's dtype, a gc.param if the step updates it."""
    if updated and (not isinstance(value, Node) or value.op != "param"):
        raise build_error(op, f"{name} must be a gc.param (its in-step update writes it), got "
                          f"{value!r}")
    (value,) = operands(value, reference=dtype)
    if value.dtype != dtype or tuple(value.shape) != (channels,):
        raise build_error(op, f"{name} must be {dtypes.as_dtype(dtype).name} of shape "
                          f"({channels},), got {value.dtype.name}{shape_str(value.shape)}",
                          dtype=value.dtype != dtype)
    return value


def _check_momentum(op: str, momentum) -> None:
    if momentum is None:
        return
    if not isinstance(momentum, numbers.Real) or isinstance(momentum, bool) \
            or not 0.0 <= momentum <= 1.0:
        raise build_error(op, f"momentum must be a number in [0, 1] or None, got {momentum!r}")


def _counter(op: str, num_batches_tracked) -> Node | None:
    if num_batches_tracked is None:
        return None
    if not isinstance(num_batches_tracked, Node) or num_batches_tracked.op != "param" \
            or num_batches_tracked.shape != () or not dtypes.is_int(num_batches_tracked.dtype):
        raise build_error(op, f"num_batches_tracked must be an int gc.param of shape (), got "
                          f"{num_batches_tracked!r}")
    return num_batches_tracked


def _with_running_updates(op: str, y: Node, running, batch, momentum, count,
                          counter) -> Node:
    """y carrying the running statistics' updates: running is (mean param, variance
    param), batch the (C,) batch mean and biased variance; count is the elements each
    batch statistic averages (for the unbiased variance)."""
    dtype = y.dtype
    if momentum is None:
        if counter is None:
            raise build_error(op, "momentum=None (the cumulative average) needs "
                              "num_batches_tracked")
        factor = 1.0 / cast(counter + 1, dtype)
    else:
        (factor,) = operands(float(momentum), reference=dtype)
    n = dim_value(count, dtype)
    unbiased = batch[1] * (n / (n - 1.0))
    for param, value in zip(running, (batch[0], unbiased)):
        y = attach_update(y, param, factor * value + (1.0 - factor) * param)
    if counter is not None:
        y = attach_update(y, counter, counter + 1)
    return y


def _check_count(op: str, count) -> None:
    if isinstance(count, int) and count < 2:
        raise build_error(op, f"expected more than 1 value per channel when training, got "
                          f"{count}")


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
               training: bool = False, momentum: float | None = 0.1, eps: float = 1e-5,
               num_batches_tracked=None) -> Node:
    """torch.nn.functional.batch_norm over x of shape (N, C, ...), per channel.

    training=True normalizes by the batch's mean and biased variance; with running_mean
    and running_var (params of shape (C,)) the result carries their update, applied by
    the compiled step that computes it (see the module docstring), and num_batches_tracked
    (an int param of shape ()) is counted. training=False normalizes by the running
    statistics. weight and bias: (C,) or None."""
    op = "batch_norm"
    x = _float_input(op, x)
    channels = _channels(op, x)
    eps = _check_eps(op, eps)
    _check_momentum(op, momentum)
    running = _running(op, running_mean, running_var, x.dtype, channels, training)
    counter = _counter(op, num_batches_tracked)
    axes = (0,) + tuple(range(2, x.ndim))
    view = _per_channel(x)
    if training:
        count = as_dim(size(tuple(x.shape[a] for a in axes)))
        _check_count(op, count)
        out, batch_mean, batch_var = _standardized(x, axes, eps)
    elif running is None:
        raise build_error(op, "evaluation (training=False) needs running_mean and running_var")
    else:
        out = (x - reshape(running[0], view)) / sqrt(reshape(running[1], view) + eps)
    out = _affine(op, out, weight, bias, (channels,), "the channels", view)
    if training and running is not None:
        batch = (reshape(batch_mean, (channels,)), reshape(batch_var, (channels,)))
        out = _with_running_updates(op, out, running, batch, momentum, count, counter)
    return out


def _running(op: str, running_mean, running_var, dtype, channels: int, updated: bool):
    """(running_mean, running_var) checked (params if `updated`), or None when neither is
    given."""
    if running_mean is None and running_var is None:
        return None
    if running_mean is None or running_var is None:
        raise build_error(op, "give both running_mean and running_var, or neither")
    return (_stat(op, "running_mean", running_mean, dtype, channels, updated),
            _stat(op, "running_var", running_var, dtype, channels, updated))


def instance_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float | None = 0.1,
                  eps: float = 1e-5) -> Node:
    """torch.nn.functional.instance_norm over x of shape (N, C, ...): each sample's
    channel normalized over its own spatial axes. With use_input_stats (PyTorch's
    default) and running statistics, the result carries their update by the mean over
    the batch of each sample's statistics (unbiased variance), as PyTorch's; without
    use_input_stats the running statistics normalize. weight and bias: (C,) or None."""
    op = "instance_norm"
    x = _float_input(op, x)
    channels = _channels(op, x, least=3)
    eps = _check_eps(op, eps)
    _check_momentum(op, momentum)
    if momentum is None:
        raise build_error(op, "momentum=None (a cumulative average) is not supported: "
                          "instance_norm has no num_batches_tracked")
    running = _running(op, running_mean, running_var, x.dtype, channels,
                       use_input_stats)
    axes = tuple(range(2, x.ndim))
    view = _per_channel(x)
    if use_input_stats:
        count = as_dim(size(tuple(x.shape[a] for a in axes)))
        if running is not None:
            _check_count(op, count)
        out, sample_mean, sample_var = _standardized(x, axes, eps)
    elif running is None:
        raise build_error(op, "use_input_stats=False needs running_mean and running_var")
    else:
        out = (x - reshape(running[0], view)) / sqrt(reshape(running[1], view) + eps)
    out = _affine(op, out, weight, bias, (channels,), "the channels", view)
    if use_input_stats and running is not None:
        batch = tuple(mean(reshape(s, x.shape[:2]), 0) for s in (sample_mean, sample_var))
        out = _with_running_updates(op, out, running, batch, momentum, count, None)
    return out


def group_norm(x, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Node:
    """torch.nn.functional.group_norm over x of shape (N, C, ...): the C channels in
    num_groups groups, each sample's group normalized over its channels and spatial
    axes; then weight and bias ((C,) or None) per channel."""
    op = "group_norm"
    x = _float_input(op, x)
    channels = _channels(op, x)
    eps = _check_eps(op, eps)
    if not isinstance(num_groups, numbers.Integral) or isinstance(num_groups, bool) \
            or num_groups < 1 or channels % num_groups:
        raise build_error(op, f"num_groups must be a positive int dividing the {channels} "
                          f"channels, got {num_groups!r}")
    grouped = reshape(x, (x.shape[0], int(num_groups), channels // int(num_groups))
                      + tuple(x.shape[2:]))
    out = _standardized(grouped, tuple(range(2, grouped.ndim)), eps)[0]
    out = reshape(out, x.shape)
    return _affine(op, out, weight, bias, (channels,), "the channels", _per_channel(x))
