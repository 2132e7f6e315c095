"""Activation layers: elementwise functions with no params."""

from __future__ import annotations

from graphc import dsl
from graphc.ir.node import Node
from graphc.nn.module import Module


class ReLU(Module):
    def forward(self, x: Node, training: bool) -> Node:
        return dsl.relu(x)


class Sigmoid(Module):
    def forward(self, x: Node, training: bool) -> Node:
        return dsl.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Node, training: bool) -> Node:
        return dsl.tanh(x)


class GELU(Module):
    """x * Phi(x), exact (erf) form; approximate="tanh" for the tanh approximation."""

    def __init__(self, approximate: str = "none"):
        self.approximate = approximate

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.gelu(x, approximate=self.approximate)
