"""Multi-head self-attention over (batch, time, features) sequences."""

from __future__ import annotations

import math

import numpy as np

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn.dropout import Dropout
from graphc.nn.linear import Linear
from graphc.nn.module import Module, check_sizes
from graphc.ops.composite import softmax
from graphc.shapes import shape_str


class MultiHeadAttention(Module):
    """softmax(Q K^T / sqrt(d_head)) V in `num_heads` heads of embed_dim / num_heads
    features each, then an output projection. Q, K, V are projections of the same input
    (Xavier-initialized, as PyTorch does); dropout applies to the attention weights.

    Masks follow PyTorch's boolean convention, True = may not attend: `causal=True` masks
    every later position, and `attn_mask` (a bool value broadcasting to (batch, heads,
    time, time), e.g. (time, time)) may be passed per call. A masked score becomes the
    dtype's lowest finite value, so a row with every position masked averages uniformly
    instead of giving NaN."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 bias: bool = True, causal: bool = False, rng=None, dtype="float32"):
        check_sizes("MultiHeadAttention", embed_dim=embed_dim, num_heads=num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not divisible by "
                             f"num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        layer = dict(bias=bias, init="xavier", rng=rng, dtype=dtype)
        self.query = Linear(embed_dim, embed_dim, **layer)
        self.key = Linear(embed_dim, embed_dim, **layer)
        self.value = Linear(embed_dim, embed_dim, **layer)
        self.out = Linear(embed_dim, embed_dim, **layer)
        self.dropout = Dropout(dropout)
        self.causal = causal

    def forward(self, x: Node, training: bool, attn_mask=None) -> Node:
        (x,) = dsl.operands(x)
        if x.ndim != 3 or x.shape[2] != self.embed_dim:
            raise build_error("MultiHeadAttention", f"expected input (batch, time, "
                              f"{self.embed_dim}), got {shape_str(x.shape)}")
        batch, time = x.shape[0], x.shape[1]

        def heads(projection: Linear) -> Node:  # (B, T, D) -> (B, H, T, D/H)
            y = projection(x, training)
            y = dsl.reshape(y, (batch, time, self.num_heads, self.head_dim))
            return dsl.transpose(y, (0, 2, 1, 3))

        q, k, v = heads(self.query), heads(self.key), heads(self.value)
        scores = (q @ dsl.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(self.head_dim))
        mask = self._mask(time, attn_mask)
        if mask is not None:
            (lowest,) = dsl.operands(float(np.finfo(scores.dtype).min), reference=scores.dtype)
            scores = dsl.where(mask, lowest, scores)
        weights = self.dropout(softmax(scores, -1), training)
        context = dsl.transpose(weights @ v, (0, 2, 1, 3))
        return self.out(dsl.reshape(context, (batch, time, self.embed_dim)), training)

    def _mask(self, time, attn_mask) -> Node | None:
        """The combined bool mask (True = masked), or None."""
        mask = None
        if self.causal:
            if not isinstance(time, int):
                raise build_error("MultiHeadAttention", "a causal mask needs a static "
                                  f"sequence length, got {time}")
            mask = dsl.constant(np.triu(np.ones((time, time), bool), k=1))
        if attn_mask is not None:
            (attn_mask,) = dsl.operands(attn_mask)
            if attn_mask.dtype != np.bool_:
                raise build_error("MultiHeadAttention", f"attn_mask must be bool (True = "
                                  f"masked), got {attn_mask.dtype.name}", dtype=True)
            mask = attn_mask if mask is None else dsl.logical_or(mask, attn_mask)
        return mask

    def extra_repr(self) -> str:
        return f"{self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout.rate}"
