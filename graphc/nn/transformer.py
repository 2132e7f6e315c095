"""TransformerEncoderLayer: self-attention and a feed-forward block, each with a residual
connection and layer norm."""

from __future__ import annotations

from graphc.ir.node import Node
from graphc.nn.activation import GELU, ReLU
from graphc.nn.attention import MultiHeadAttention
from graphc.nn.dropout import Dropout
from graphc.nn.linear import Linear
from graphc.nn.module import Module
from graphc.nn.norm import LayerNorm


class TransformerEncoderLayer(Module):
    """x + attn(x) then x + ff(x), ff = Linear -> activation -> Dropout -> Linear.

    norm_first=False (as PyTorch's default) normalizes after each residual sum;
    norm_first=True normalizes each block's input instead ("pre-norm"), which trains
    more easily without learning-rate warm-up. activation: "gelu" or "relu"."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "gelu", norm_first: bool = False,
                 eps: float = 1e-5, causal: bool = False, rng=None, dtype="float32"):
        activations = {"gelu": GELU, "relu": ReLU}
        if activation not in activations:
            raise ValueError(f"TransformerEncoderLayer: activation must be one of "
                             f"{sorted(activations)}, got {activation!r}")
        init = "he" if activation == "relu" else "xavier"
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout, causal=causal, rng=rng,
                                            dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, init=init, rng=rng, dtype=dtype)
        self.activation = activations[activation]()
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, init="xavier", rng=rng, dtype=dtype)
        self.norm1 = LayerNorm(d_model, eps, dtype)
        self.norm2 = LayerNorm(d_model, eps, dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.norm_first = norm_first

    def _attention(self, x: Node, training: bool, attn_mask) -> Node:
        return self.dropout1(self.self_attn(x, training, attn_mask=attn_mask), training)

    def _feed_forward(self, x: Node, training: bool) -> Node:
        hidden = self.dropout(self.activation(self.linear1(x, training), training), training)
        return self.dropout2(self.linear2(hidden, training), training)

    def forward(self, x: Node, training: bool, attn_mask=None) -> Node:
        """attn_mask: as MultiHeadAttention's (bool, True = may not attend)."""
        if self.norm_first:
            x = x + self._attention(self.norm1(x, training), training, attn_mask)
            return x + self._feed_forward(self.norm2(x, training), training)
        x = self.norm1(x + self._attention(x, training, attn_mask), training)
        return self.norm2(x + self._feed_forward(x, training), training)
