"""Image layers over NCHW batches: Conv2d (OIHW weights, like PyTorch), max and average
pooling, and Flatten to hand conv features to Linear layers."""

from __future__ import annotations

import math

import numpy as np

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn import init as initializers
from graphc.nn.module import Module, check_sizes
from graphc.ops.conv import conv2d
from graphc.ops.pool import avg_pool2d, max_pool2d
from graphc.shapes import shape_str


def _pair(value, what: str, layer: str) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{layer}: {what} must be an int or a pair, got {value!r}")
    return pair


class Conv2d(Module):
    """2-D convolution: (N, C_in, H, W) -> (N, C_out, H', W'). init: "he" or "xavier"."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, init: str = "he", rng=None, dtype="float32"):
        check_sizes("Conv2d", in_channels=in_channels, out_channels=out_channels)
        kh, kw = _pair(kernel_size, "kernel_size", "Conv2d")
        check_sizes("Conv2d", kernel_height=kh, kernel_width=kw)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        gen = initializers.generator(rng)
        name = initializers.unique_name("conv")
        shape = (out_channels, in_channels, kh, kw)
        self.weight = dsl.param(f"{name}.weight", initializers.weight(
            gen, init, shape, in_channels * kh * kw, out_channels * kh * kw, dtype))
        self.bias = dsl.param(f"{name}.bias", np.zeros(out_channels, dtype)) if bias else None

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise build_error("Conv2d", f"expected input (N, {self.in_channels}, H, W), got "
                              f"{shape_str(x.shape)}")
        return conv2d(x, self.weight, self.bias, stride=self.stride,
                             padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class MaxPool2d(Module):
    """The largest value of each window (stride defaults to the kernel size)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Node, training: bool) -> Node:
        return max_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    """The mean of each window (stride defaults to the kernel size)."""

    def forward(self, x: Node, training: bool) -> Node:
        return avg_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...): all axes from start_dim on become one."""

    def __init__(self, start_dim: int = 1):
        self.start_dim = start_dim

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        head, tail = x.shape[:self.start_dim], x.shape[self.start_dim:]
        if not all(isinstance(d, int) for d in tail):
            raise build_error("Flatten", f"the flattened axes of {shape_str(x.shape)} must have "
                              "static sizes")
        return dsl.reshape(x, head + (math.prod(tail),))

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"
