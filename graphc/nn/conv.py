"""Convolution layers over (N, C, L) and (N, C, H, W) batches with PyTorch's arguments,
param names and layouts: Conv1d and Conv2d (weight (out, in/groups, *kernel)),
ConvTranspose1d and ConvTranspose2d (weight (in, out/groups, *kernel))."""

from __future__ import annotations

import math

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn import init as initializers
from graphc.nn.module import Module, check_sizes
from graphc.shapes import shape_str

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value, n: int, what: str, layer: str, minimum: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum
                               for v in values):
        kind = "an int" if n == 1 else f"an int or {n} ints"
        raise ValueError(f"{layer}: {what} must be {kind} >= {minimum}, got {value!r}")
    return values


def _single(values: tuple[int, ...]):
    """An attribute as the op builders take it: an int in 1-D, a pair in 2-D."""
    return values[0] if len(values) == 1 else values


class _ConvNd(Module):
    """What Conv1d/2d and ConvTranspose1d/2d share: sizes, params and their init."""

    dims = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", output_padding=0, *, init: str = "he",
                 rng=None, dtype="float32"):
        layer = type(self).__name__
        check_sizes(layer, in_channels=in_channels, out_channels=out_channels, groups=groups)
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(f"{layer}: {name} {channels} is not divisible by groups "
                                 f"{groups}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{layer}: padding_mode must be one of {sorted(PADDING_MODES)}, "
                             f"got {padding_mode!r}")
        initializers.check_init(init)
        n = self.dims
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", layer, 1)
        self.stride = _tuple(stride, n, "stride", layer, 1)
        self.dilation = _tuple(dilation, n, "dilation", layer, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self.transposed:
                raise ValueError(f"{layer}: padding must be ints"
                                 + ("" if self.transposed else " or 'same' / 'valid'")
                                 + f", got {padding!r}")
            if padding == "same" and self.stride != (1,) * n:
                raise ValueError(f"{layer}: padding='same' needs stride 1, got {stride!r}")
            self.padding = padding
        else:
            self.padding = _tuple(padding, n, "padding", layer, 0)
        self.output_padding = _tuple(output_padding, n, "output_padding", layer, 0)
        if self.transposed and any(op >= max(s, d) for op, s, d in zip(
                self.output_padding, self.stride, self.dilation)):
            raise ValueError(f"{layer}: output_padding {output_padding!r} must be smaller "
                             "than stride or dilation")
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f"{layer}: only padding_mode='zeros' is supported (as PyTorch)")
        self.padding_mode = padding_mode
        receptive = math.prod(self.kernel_size)
        if self.transposed:  # PyTorch's layout, and its fan_in (dim 1 of the weight)
            shape = (in_channels, out_channels // groups) + self.kernel_size
            fan_in, fan_out = out_channels // groups * receptive, in_channels * receptive
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
            fan_in, fan_out = in_channels // groups * receptive, out_channels * receptive
        gen = initializers.generator(rng)
        name = initializers.unique_name(layer.lower())
        self.weight = dsl.param(f"{name}.weight", initializers.weight(
            gen, init, shape, fan_in, fan_out, dtype))
        self.bias = dsl.param(f"{name}.bias", initializers.bias(
            gen, init, out_channels, fan_in, dtype)) if bias else None

    def _check_input(self, x) -> Node:
        (x,) = dsl.operands(x)
        axes = ("L",) if self.dims == 1 else ("H", "W")
        if x.ndim != self.dims + 2 or x.shape[1] != self.in_channels:
            raise build_error(type(self).__name__, f"expected input (N, {self.in_channels}, "
                              f"{', '.join(axes)}), got {shape_str(x.shape)}")
        return x

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self.dims:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            text += f", dilation={self.dilation}"
        if self.transposed and self.output_padding != (0,) * self.dims:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, init: str = "he", rng=None,
                 dtype="float32"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, init=init, rng=rng, dtype=dtype)

    def forward(self, x: Node, training: bool) -> Node:
        x = self._check_input(x)
        padding = self.padding if isinstance(self.padding, str) else _single(self.padding)
        conv = dsl.conv1d if self.dims == 1 else dsl.conv2d
        return conv(x, self.weight, self.bias, stride=_single(self.stride), padding=padding,
                    dilation=_single(self.dilation), groups=self.groups,
                    padding_mode=self.padding_mode)


class Conv1d(_Conv):
    """1-D convolution: (N, C_in, L) -> (N, C_out, L'), weight (C_out, C_in/groups, k).
    init: "he" (graphc's default), "xavier" or "torch" (PyTorch's uniform)."""

    dims = 1


class Conv2d(_Conv):
    """2-D convolution: (N, C_in, H, W) -> (N, C_out, H', W'), weight (C_out, C_in/groups,
    kh, kw) (OIHW). init: "he" (graphc's default), "xavier" or "torch"."""

    dims = 2


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, output_padding=0, groups: int = 1, bias: bool = True,
                 dilation=1, padding_mode: str = "zeros", *, init: str = "he", rng=None,
                 dtype="float32"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, init=init, rng=rng,
                         dtype=dtype)

    def forward(self, x: Node, training: bool, output_size=None) -> Node:
        x = self._check_input(x)
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._padding_for(x, output_size)
        conv = dsl.conv_transpose1d if self.dims == 1 else dsl.conv_transpose2d
        return conv(x, self.weight, self.bias, stride=_single(self.stride),
                    padding=_single(self.padding), output_padding=_single(output_padding),
                    groups=self.groups, dilation=_single(self.dilation))

    def _padding_for(self, x: Node, output_size) -> tuple[int, ...]:
        """The output_padding that gives `output_size` (PyTorch's forward(x, output_size))."""
        sizes = tuple(output_size)[-self.dims:]
        extra = []
        for axis, size in enumerate(sizes):
            length = x.shape[2 + axis]
            if not isinstance(length, int):
                raise build_error(type(self).__name__, "output_size needs static spatial "
                                  f"sizes, got {shape_str(x.shape)}")
            smallest = ((length - 1) * self.stride[axis] - 2 * self.padding[axis]
                        + self.dilation[axis] * (self.kernel_size[axis] - 1) + 1)
            if not smallest <= size < smallest + max(self.stride[axis], self.dilation[axis]):
                raise build_error(type(self).__name__, f"output_size {tuple(output_size)} is "
                                  f"not reachable from an input of shape {shape_str(x.shape)}")
            extra.append(size - smallest)
        return tuple(extra)


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-D convolution (the gradient of Conv1d wrt its input): (N, C_in, L) ->
    (N, C_out, (L-1)s - 2p + d(k-1) + output_padding + 1), weight (C_in, C_out/groups, k)."""

    dims = 1


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-D convolution (learned upsampling): (N, C_in, H, W) -> (N, C_out, H',
    W'), H' = (H-1)s - 2p + d(kh-1) + output_padding + 1; weight (C_in, C_out/groups, kh,
    kw)."""

    dims = 2
