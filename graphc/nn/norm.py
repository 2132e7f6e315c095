"""LayerNorm: normalization over the last axis with a learned scale and shift."""

from __future__ import annotations

import numpy as np

from graphc import dsl
from graphc.ir.node import Node
from graphc.nn import init
from graphc.nn.module import Module, check_sizes
from graphc.ops.norm import layer_norm


class LayerNorm(Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (of size `dim`);
    weight starts at ones and bias at zeros."""

    def __init__(self, dim: int, eps: float = 1e-5, dtype="float32"):
        check_sizes("LayerNorm", dim=dim)
        self.dim, self.eps = dim, eps
        name = init.unique_name("layernorm")
        self.weight = dsl.param(f"{name}.weight", np.ones(dim, dtype))
        self.bias = dsl.param(f"{name}.bias", np.zeros(dim, dtype))

    def forward(self, x: Node, training: bool) -> Node:
        return layer_norm(x, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"
