"""Transformer layers as PyTorch's (names, arguments, defaults, state_dict entries):
TransformerEncoderLayer, TransformerEncoder (a stack of copies), TransformerDecoderLayer
(self-attention, cross-attention over the encoder's memory, feed-forward) and
TransformerDecoder. Attention is graphc's fused scaled_dot_product_attention."""

from __future__ import annotations

import copy
from collections.abc import Callable

from graphc import dsl
from graphc.ir.node import Node
from graphc.nn import init
from graphc.nn.activation import GELU, ReLU
from graphc.nn.attention import MultiheadAttention
from graphc.nn.dropout import Dropout
from graphc.nn.linear import Linear
from graphc.nn.module import Module
from graphc.nn.norm import LayerNorm

_ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


def _activation(layer: str, activation) -> Callable[[Node], Node]:
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{layer}: activation should be relu/gelu, not {activation!r}")
        return _ACTIVATIONS[activation]()
    if not callable(activation):
        raise TypeError(f"{layer}: activation must be 'relu', 'gelu', a module or a function "
                        f"of a graph value, got {activation!r}")
    return activation


class _Block(Module):
    """What the encoder and decoder layers share: the feed-forward block and the norms."""

    def _common(self, d_model: int, dim_feedforward: int, dropout: float, activation,
                layer_norm_eps: float, norm_first: bool, bias: bool, norms: int, dtype,
                rng) -> None:
        gen = init.generator(rng)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, init="torch", rng=gen,
                              dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, init="torch", rng=gen,
                              dtype=dtype)
        self.norm_first = norm_first
        for k in range(1, norms + 1):
            setattr(self, f"norm{k}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias,
                                                dtype=dtype))
        for k in range(1, norms + 1):
            setattr(self, f"dropout{k}", Dropout(dropout))
        self.activation = _activation(type(self).__name__, activation)

    def _ff_block(self, x: Node, last_dropout: Dropout) -> Node:
        return last_dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoderLayer(_Block):
    """torch.nn.TransformerEncoderLayer: self-attention then a feed-forward block
    (linear1 -> activation -> dropout -> linear2), each with dropout and a residual
    connection and LayerNorm after it (before it with norm_first, the "pre-norm" that
    trains without warm-up). Inputs (S, N, E), or (N, S, E) with batch_first; defaults as
    PyTorch's (ReLU, dropout 0.1, dim_feedforward 2048). forward(src, src_mask=None,
    src_key_padding_mask=None, is_causal=False), masks as MultiheadAttention's; is_causal
    without src_mask applies the causal mask. causal=True (graphc's) always does."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 dtype="float32", *, causal: bool = False, rng=None):
        gen = init.generator(rng)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dtype, rng=gen)
        self._common(d_model, dim_feedforward, dropout, activation, layer_norm_eps, norm_first,
                     bias, 2, dtype, gen)
        self.causal = causal

    def forward(self, src, src_mask=None, src_key_padding_mask=None,
                is_causal: bool = False) -> Node:
        (x,) = dsl.operands(src)
        causal = self.causal or (bool(is_causal) and src_mask is None)

        def attention(h):
            return self.dropout1(self.self_attn.attend(h, h, h, src_key_padding_mask, src_mask,
                                                       causal)[0])

        if self.norm_first:
            x = x + attention(self.norm1(x))
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + attention(x))
        return self.norm2(x + self._ff_block(x, self.dropout2))


class TransformerDecoderLayer(_Block):
    """torch.nn.TransformerDecoderLayer: self-attention over the target, cross-attention
    from the target to the encoder's output (memory), then the feed-forward block; each
    with dropout, a residual connection and LayerNorm (after, or before with norm_first).
    forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 dtype="float32", *, rng=None):
        gen = init.generator(rng)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dtype, rng=gen)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, dtype=dtype, rng=gen)
        self._common(d_model, dim_feedforward, dropout, activation, layer_norm_eps, norm_first,
                     bias, 3, dtype, gen)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Node:
        x, memory = dsl.operands(tgt, memory)
        self_causal = bool(tgt_is_causal) and tgt_mask is None
        cross_causal = bool(memory_is_causal) and memory_mask is None

        def self_block(h):
            return self.dropout1(self.self_attn.attend(h, h, h, tgt_key_padding_mask, tgt_mask,
                                                       self_causal)[0])

        def cross_block(h):
            return self.dropout2(self.multihead_attn.attend(
                h, memory, memory, memory_key_padding_mask, memory_mask, cross_causal)[0])

        if self.norm_first:
            x = x + self_block(self.norm1(x))
            x = x + cross_block(self.norm2(x))
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + self_block(x))
        x = self.norm2(x + cross_block(x))
        return self.norm3(x + self._ff_block(x, self.dropout3))


def clones(module: Module, n: int) -> list[Module]:
    """n copies of a module, as PyTorch's deep copies: each with params of its own that
    start equal to the original's, and dropout seeds of its own (a list of modules: its
    items are submodules named "layers.0", ... as in PyTorch's ModuleList)."""
    copies = []
    for k in range(n):
        memo = {id(node): dsl.param(f"{node.name}.copy{k}", node.value)
                for _, node in module._walk("")}
        twin = copy.deepcopy(module, memo)
        for part in twin.modules():
            if "seed" in vars(part):
                part.seed = init.next_dropout_seed()
        copies.append(twin)
    return copies


class TransformerEncoder(Module):
    """torch.nn.TransformerEncoder: num_layers copies of encoder_layer applied in turn
    (state_dict entries layers.0..., as PyTorch's), then norm if given.
    forward(src, mask=None, src_key_padding_mask=None, is_causal=None)."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Module | None = None, enable_nested_tensor: bool = True,
                 mask_check: bool = True):
        self.layers = clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None,
                is_causal: bool | None = None) -> Node:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """torch.nn.TransformerDecoder: num_layers copies of decoder_layer applied in turn to
    the target, each attending to the same memory, then norm if given."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: Module | None = None):
        self.layers = clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Node:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x
