"""Dropout layers: zero activations at random while training, the identity when
evaluating. Dropout drops elements; Dropout2d drops whole channels of (N, C, H, W) maps."""

from __future__ import annotations

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn import init
from graphc.nn.module import Module
from graphc.ops.composite import dropout
from graphc.ops.random import random_uniform
from graphc.shapes import shape_str


def _probability(layer: str, p, rate) -> float:
    if rate is not None:
        p = rate  # graphc's older name
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{layer}: p must be a probability in [0, 1], got {p!r}")
    return float(p)


class Dropout(Module):
    """Drops each element with probability `p` in the training graph (survivors scaled by
    1/(1-p)), as torch.nn.Dropout (`rate=` is accepted for p). Each layer has its own
    seed (given, or the next of graphc.nn's counter), so two layers never share a mask;
    the mask changes at every call of the step."""

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rate: float | None = None,
                 seed: int | None = None):
        self.p = _probability(type(self).__name__, p, rate)
        self.inplace = inplace  # accepted for PyTorch's signature; graphs have no in-place
        self.seed = init.next_dropout_seed() if seed is None else seed

    @property
    def rate(self) -> float:
        return self.p

    def forward(self, x: Node, training: bool) -> Node:
        return dropout(x, self.p, seed=self.seed) if training else x

    def extra_repr(self) -> str:
        return f"p={self.p}, seed={self.seed}"


class Dropout2d(Dropout):
    """Zeroes whole channels: each (n, c) feature map of an (N, C, H, W) input (or each
    channel of a (C, H, W) one) is dropped with probability p, survivors scaled by
    1/(1-p), as torch.nn.Dropout2d."""

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        if x.ndim not in (3, 4):
            raise build_error("Dropout2d", f"expected (N, C, H, W) or (C, H, W), got "
                              f"{shape_str(x.shape)}")
        if not training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        keep = random_uniform(x.shape[:-2] + (1, 1), self.seed, x.dtype) >= self.p
        scale, zero = dsl.operands(1.0 / (1.0 - self.p), 0.0, reference=x.dtype)
        return x * dsl.where(keep, scale, zero)
