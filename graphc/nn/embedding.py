"""Embedding: a learned table of vectors looked up by integer ids."""

from __future__ import annotations

import numpy as np

from graphc import dsl
from graphc.ir.node import Node
from graphc.nn import init
from graphc.nn.module import Module, check_sizes


class Embedding(Module):
    """ids of any shape -> (..., embedding_dim) rows of a (num_embeddings, embedding_dim)
    table `weight` drawn from N(0, std^2) (std=1 as in PyTorch). padding_idx: that row
    starts at zeros and gets no gradient (it stays as loaded or set), as in PyTorch."""

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 padding_idx: int | None = None, *, std: float = 1.0, rng=None,
                 dtype="float32"):
        check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, int) or \
                    not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be an int in "
                                 f"[-{num_embeddings}, {num_embeddings}), got {padding_idx!r}")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        gen = init.generator(rng)
        name = init.unique_name("embedding")
        table = gen.normal(0.0, std, (num_embeddings, embedding_dim)).astype(dtype)
        if padding_idx is not None:
            table[padding_idx] = 0
        self.weight = dsl.param(f"{name}.weight", table)

    @property
    def dim(self) -> int:
        """graphc's older name for embedding_dim."""
        return self.embedding_dim

    def forward(self, ids: Node, training: bool) -> Node:
        table = self.weight
        if self.padding_idx is not None:  # the padding row's gradient is 0
            frozen = np.zeros((self.num_embeddings, 1), bool)
            frozen[self.padding_idx] = True
            table = dsl.where(dsl.constant(frozen), dsl.stop_gradient(table), table)
        return dsl.embedding(ids, table)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
