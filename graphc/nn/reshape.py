"""Layers that only rearrange: Identity, Flatten (axes into one) and Unflatten (one axis
into several), with PyTorch's arguments."""

from __future__ import annotations

import math

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn.module import Module
from graphc.shapes import shape_str


class Identity(Module):
    """Returns its input; takes (and ignores) any arguments, as torch.nn.Identity."""

    def __init__(self, *args, **kwargs):
        pass

    def forward(self, x: Node, training: bool) -> Node:
        return x


def _axis(layer: str, what: str, dim: int, ndim: int, shape) -> int:
    if not -ndim <= dim < ndim:
        raise build_error(layer, f"{what}={dim} is out of range for an input of shape "
                          f"{shape_str(shape)}")
    return dim % ndim


class Flatten(Module):
    """Axes start_dim..end_dim (inclusive) become one: (N, C, H, W) -> (N, C*H*W) by
    default, as torch.nn.Flatten."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        if x.ndim == 0:
            return dsl.reshape(x, (1,))
        start = _axis("Flatten", "start_dim", self.start_dim, x.ndim, x.shape)
        end = _axis("Flatten", "end_dim", self.end_dim, x.ndim, x.shape)
        if start > end:
            raise build_error("Flatten", f"start_dim {self.start_dim} comes after end_dim "
                              f"{self.end_dim} for an input of shape {shape_str(x.shape)}")
        merged = x.shape[start:end + 1]
        if not all(isinstance(d, int) for d in merged):
            raise build_error("Flatten", f"the flattened axes of {shape_str(x.shape)} must "
                              "have static sizes")
        return dsl.reshape(x, x.shape[:start] + (math.prod(merged),) + x.shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Axis `dim` becomes the axes `unflattened_size` (whose product is its size; one
    entry may be -1), as torch.nn.Unflatten: Unflatten(1, (C, H, W)) undoes Flatten()."""

    def __init__(self, dim: int, unflattened_size):
        sizes = tuple(unflattened_size)
        if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s == 0 or s < -1
                            for s in sizes) or sizes.count(-1) > 1:
            raise ValueError(f"Unflatten: unflattened_size must be positive ints (one may be "
                             f"-1), got {unflattened_size!r}")
        self.dim, self.unflattened_size = dim, sizes

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        if x.ndim == 0:
            raise build_error("Unflatten", "needs an input with at least one axis")
        axis = _axis("Unflatten", "dim", self.dim, x.ndim, x.shape)
        size = x.shape[axis]
        known = math.prod(s for s in self.unflattened_size if s != -1)
        if isinstance(size, int) and (size % known if -1 in self.unflattened_size
                                      else size != known):
            raise build_error("Unflatten", f"axis {axis} of {shape_str(x.shape)} (size {size}) "
                              f"does not split into {self.unflattened_size}")
        sizes = self.unflattened_size
        if -1 in sizes:  # resolve it here, so the other axes may stay symbolic
            sizes = tuple(size // known if s == -1 else s for s in sizes)
        return dsl.reshape(x, x.shape[:axis] + sizes + x.shape[axis + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
