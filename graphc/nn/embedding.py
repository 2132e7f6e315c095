"""Embedding: a learned table of vectors looked up by integer ids."""

from __future__ import annotations

from graphc import dsl
from graphc.ir.node import Node
from graphc.nn import init
from graphc.nn.module import Module, check_sizes


class Embedding(Module):
    """ids of any shape -> (..., dim) rows of a (num_embeddings, dim) table drawn from
    N(0, std^2) (std=1 as in PyTorch)."""

    def __init__(self, num_embeddings: int, dim: int, std: float = 1.0, rng=None,
                 dtype="float32"):
        check_sizes("Embedding", num_embeddings=num_embeddings, dim=dim)
        self.num_embeddings, self.dim = num_embeddings, dim
        gen = init.generator(rng)
        name = init.unique_name("embedding")
        self.weight = dsl.param(f"{name}.weight",
                                gen.normal(0.0, std, (num_embeddings, dim)).astype(dtype))

    def forward(self, ids: Node, training: bool) -> Node:
        return dsl.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.dim}"
