"""Dropout: zeroes activations at random while training, the identity when evaluating."""

from __future__ import annotations

from graphc.ir.node import Node
from graphc.nn import init
from graphc.nn.module import Module
from graphc.ops.composite import dropout


class Dropout(Module):
    """Drops each element with probability `rate` in the training graph (survivors scaled by
    1/(1-rate)). Each layer has its own seed (given, or the next of graphc.nn's counter),
    so two layers never share a mask; the mask changes at every call of the step."""

    def __init__(self, rate: float = 0.5, seed: int | None = None):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = init.next_dropout_seed() if seed is None else seed

    def forward(self, x: Node, training: bool) -> Node:
        return dropout(x, self.rate, seed=self.seed) if training else x

    def extra_repr(self) -> str:
        return f"rate={self.rate}, seed={self.seed}"
