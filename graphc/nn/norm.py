"""Normalization layers with PyTorch's names, arguments, defaults and state_dict entries:
LayerNorm, RMSNorm, BatchNorm1d/2d, GroupNorm, InstanceNorm1d/2d (graphc/ops/norm.py
computes them).

A BatchNorm (or InstanceNorm with track_running_stats) keeps running_mean, running_var
and num_batches_tracked as buffers: saved and loaded with the state_dict, never given to
an optimizer. In training mode its output carries their update (gc.attach_update), so a
compiled step that computes the output also updates them, as PyTorch's forward does, with
nothing to pass to gc.compile; in evaluation mode they normalize."""

from __future__ import annotations

import numbers

import numpy as np

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn import init
from graphc.nn.module import Module, check_sizes
from graphc.ops.norm import batch_norm, group_norm, instance_norm, layer_norm, rms_norm
from graphc.shapes import shape_str


def _shape(layer: str, normalized_shape) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) \
        else tuple(normalized_shape)
    check_sizes(layer, **{f"normalized_shape[{k}]": d for k, d in enumerate(shape)})
    if not shape:
        raise ValueError(f"{layer}: normalized_shape must not be empty")
    return tuple(int(d) for d in shape)


class LayerNorm(Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing dims
    normalized_shape (an int or a tuple); weight starts at ones and bias at zeros
    (elementwise_affine=False: neither; bias=False: no bias)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype="float32"):
        self.normalized_shape = _shape("LayerNorm", normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        name = init.unique_name("layernorm")
        self.weight = dsl.param(f"{name}.weight", np.ones(self.normalized_shape, dtype)) \
            if elementwise_affine else None
        self.bias = dsl.param(f"{name}.bias", np.zeros(self.normalized_shape, dtype)) \
            if elementwise_affine and bias else None

    @property
    def dim(self) -> int:
        """The size of the last normalized axis (graphc's older name)."""
        return self.normalized_shape[-1]

    def forward(self, x: Node, training: bool) -> Node:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class RMSNorm(Module):
    """x / sqrt(mean(x**2) + eps) * weight over the trailing dims normalized_shape; eps
    None is the dtype's machine epsilon, as in PyTorch; weight starts at ones."""

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, dtype="float32"):
        self.normalized_shape = _shape("RMSNorm", normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        name = init.unique_name("rmsnorm")
        self.weight = dsl.param(f"{name}.weight", np.ones(self.normalized_shape, dtype)) \
            if elementwise_affine else None

    def forward(self, x: Node, training: bool) -> Node:
        return rms_norm(x, self.normalized_shape, self.weight, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class _NormBase(Module):
    """What BatchNorm and InstanceNorm share: the per-channel affine params (weight ones,
    bias zeros) and, with track_running_stats, the buffers running_mean (zeros),
    running_var (ones) and num_batches_tracked (0, int64), in PyTorch's order."""

    kind = "norm"

    def __init__(self, num_features: int, eps: float, momentum: float | None, affine: bool,
                 track_running_stats: bool, dtype):
        layer = type(self).__name__
        check_sizes(layer, num_features=num_features)
        if momentum is not None and (not isinstance(momentum, numbers.Real)
                                     or isinstance(momentum, bool)
                                     or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"{layer}: momentum must be in [0, 1] or None, got {momentum!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        name = init.unique_name(self.kind)
        self.weight = dsl.param(f"{name}.weight", np.ones(num_features, dtype)) \
            if affine else None
        self.bias = dsl.param(f"{name}.bias", np.zeros(num_features, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", dsl.param(f"{name}.running_mean",
                                                           np.zeros(num_features, dtype)))
            self.register_buffer("running_var", dsl.param(f"{name}.running_var",
                                                          np.ones(num_features, dtype)))
            self.register_buffer("num_batches_tracked", dsl.param(
                f"{name}.num_batches_tracked", np.zeros((), np.int64)))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batch counted (as PyTorch's)."""
        if self.track_running_stats:
            self.running_mean.value = np.zeros_like(self.running_mean.value)
            self.running_var.value = np.ones_like(self.running_var.value)
            self.num_batches_tracked.value = np.zeros((), np.int64)

    def _check_input(self, x: Node, ranks: tuple[int, ...], form: str) -> Node:
        """x as a value of one of `ranks` dims with num_features channels on axis 1."""
        (x,) = dsl.operands(x)
        layer = type(self).__name__
        if x.ndim not in ranks or x.shape[1] != self.num_features:
            raise build_error(layer, f"expected input {form} with C = {self.num_features}, "
                              f"got {shape_str(x.shape)}")
        return x

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """torch.nn.BatchNorm*d: per channel over the batch (and spatial axes). Training
    mode normalizes by the batch statistics and, with track_running_stats, its output
    carries the running statistics' update (momentum, or a cumulative average with
    momentum=None); evaluation mode normalizes by the running statistics (by the batch's
    without track_running_stats)."""

    kind = "batchnorm"
    ranks: tuple[int, ...] = ()
    form = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype="float32"):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x: Node, training: bool) -> Node:
        x = self._check_input(x, self.ranks, self.form)
        if not self.track_running_stats:
            return batch_norm(x, None, None, self.weight, self.bias, training=True,
                              eps=self.eps)
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=training, momentum=self.momentum, eps=self.eps,
                          num_batches_tracked=self.num_batches_tracked)


class BatchNorm1d(_BatchNorm):
    __doc__ = _BatchNorm.__doc__ + " Input (N, C) or (N, C, L)."
    ranks, form = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    __doc__ = _BatchNorm.__doc__ + " Input (N, C, H, W)."
    ranks, form = (4,), "(N, C, H, W)"


class _InstanceNorm(_NormBase):
    """torch.nn.InstanceNorm*d: each sample's channel normalized over its own spatial
    axes (affine=False and track_running_stats=False by default, as PyTorch's). With
    track_running_stats, training mode's output carries the running statistics' update
    (the batch mean of each sample's statistics) and evaluation mode normalizes by them.
    Takes an unbatched input too (no N axis)."""

    kind = "instancenorm"
    ranks: tuple[int, ...] = ()
    form = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, dtype="float32"):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        unbatched = x.ndim == self.ranks[0] - 1
        if unbatched:
            x = dsl.reshape(x, (1,) + tuple(x.shape))
        x = self._check_input(x, self.ranks, self.form)
        use_input_stats = training or not self.track_running_stats
        # PyTorch's InstanceNorm passes momentum None on as 0 (no update) and never counts
        # batches.
        momentum = 0.0 if self.momentum is None else self.momentum
        out = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_input_stats=use_input_stats, momentum=momentum, eps=self.eps)
        return dsl.reshape(out, tuple(x.shape[1:])) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    __doc__ = _InstanceNorm.__doc__ + " Input (N, C, L) or (C, L)."
    ranks, form = (3,), "(N, C, L) or (C, L)"


class InstanceNorm2d(_InstanceNorm):
    __doc__ = _InstanceNorm.__doc__ + " Input (N, C, H, W) or (C, H, W)."
    ranks, form = (4,), "(N, C, H, W) or (C, H, W)"


class GroupNorm(Module):
    """torch.nn.GroupNorm: the num_channels channels in num_groups groups, each sample's
    group normalized over its channels and spatial axes, then a per-channel weight (ones)
    and bias (zeros) with affine."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, dtype="float32"):
        check_sizes("GroupNorm", num_groups=num_groups, num_channels=num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels {num_channels} is not divisible by "
                             f"num_groups {num_groups}")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        name = init.unique_name("groupnorm")
        self.weight = dsl.param(f"{name}.weight", np.ones(num_channels, dtype)) \
            if affine else None
        self.bias = dsl.param(f"{name}.bias", np.zeros(num_channels, dtype)) if affine else None

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise build_error("GroupNorm", f"expected input (N, {self.num_channels}, ...), got "
                              f"{shape_str(x.shape)}")
        return group_norm(x, self.num_groups, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}")
