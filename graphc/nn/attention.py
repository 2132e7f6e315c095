"""Multi-head attention: torch.nn.MultiheadAttention (its params, arguments, defaults,
masks and return value), computed by graphc's fused scaled_dot_product_attention; and
MultiHeadAttention, graphc's batch-first self-attention layer over the same params."""

from __future__ import annotations

import math

import numpy as np

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn import init
from graphc.nn.linear import Linear
from graphc.nn.module import Module, check_sizes
from graphc.ops.attention import attention
from graphc.ops.composite import dropout, softmax
from graphc.shapes import shape_str

LAYER = "MultiheadAttention"


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: queries attend to keys (kdim features) and values
    (vdim), in num_heads heads of embed_dim / num_heads features, then out_proj.

    Params as PyTorch's: in_proj_weight (3E, E) (or q_proj_weight, k_proj_weight,
    v_proj_weight when kdim or vdim differ from E), in_proj_bias (3E), bias_k and bias_v
    (add_bias_kv), out_proj.weight and .bias. Inputs are (L, N, E) sequences, (N, L, E)
    with batch_first, or unbatched (L, E). `forward(query, key, value, key_padding_mask=None,
    need_weights=True, attn_mask=None, average_attn_weights=True, is_causal=False)` returns
    (output, weights or None): masks as PyTorch's (bool True = may not attend, float
    added; attn_mask (L, S) or (N * heads, L, S), key_padding_mask (N, S)); is_causal
    without attn_mask applies the causal mask (with one, it is PyTorch's hint and
    attn_mask rules); a query that may attend nothing gets zeros (PyTorch's softmax path
    gives NaN there). Dropout applies to the attention weights in training mode."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype="float32", *,
                 rng=None):
        kdim = embed_dim if kdim is None else kdim
        vdim = embed_dim if vdim is None else vdim
        check_sizes(type(self).__name__, embed_dim=embed_dim, num_heads=num_heads, kdim=kdim,
                    vdim=vdim)
        if embed_dim % num_heads:
            raise ValueError(f"{type(self).__name__}: embed_dim {embed_dim} is not divisible "
                             f"by num_heads {num_heads}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{type(self).__name__}: dropout must be in [0, 1], got "
                             f"{dropout!r}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim, self.vdim, self.dropout = kdim, vdim, float(dropout)
        self.batch_first, self.add_zero_attn = batch_first, add_zero_attn
        self._same_dims = kdim == embed_dim and vdim == embed_dim
        gen = init.generator(rng)
        name = init.unique_name("mha")
        e = embed_dim
        if self._same_dims:  # PyTorch's xavier_uniform_ over the packed (3E, E) matrix
            self.in_proj_weight = dsl.param(f"{name}.in_proj_weight",
                                            init.xavier_uniform(gen, (3 * e, e), e, 3 * e, dtype))
        else:
            for part, width in (("q", e), ("k", kdim), ("v", vdim)):
                setattr(self, f"{part}_proj_weight", dsl.param(
                    f"{name}.{part}_proj_weight", init.xavier_uniform(gen, (e, width), width, e,
                                                                      dtype)))
        self.in_proj_bias = dsl.param(f"{name}.in_proj_bias", np.zeros(3 * e, dtype)) \
            if bias else None
        if add_bias_kv:  # xavier_normal_ over (1, 1, E): fan_in = 1, fan_out = E
            std = math.sqrt(2.0 / (1 + e))
            self.bias_k = dsl.param(f"{name}.bias_k", gen.normal(0, std, (1, 1, e)).astype(dtype))
            self.bias_v = dsl.param(f"{name}.bias_v", gen.normal(0, std, (1, 1, e)).astype(dtype))
        else:
            self.bias_k = self.bias_v = None
        self.out_proj = Linear(e, e, bias=bias, init="torch", rng=gen, dtype=dtype)
        if bias:
            self.out_proj.bias.value = np.zeros(e, dtype)
        self.seed = init.next_dropout_seed()

    # ----- PyTorch's call -----------------------------------------------------------------
    def forward(self, query, key=None, value=None, key_padding_mask=None,
                need_weights: bool = True, attn_mask=None, average_attn_weights: bool = True,
                is_causal: bool = False):
        """(output, averaged or per-head weights, or None without need_weights); key and
        value default to the query (self-attention)."""
        key = query if key is None else key
        value = key if value is None else value
        causal = bool(is_causal) and attn_mask is None
        return self.attend(query, key, value, key_padding_mask, attn_mask, causal,
                           need_weights, average_attn_weights)

    def attend(self, query, key, value, key_padding_mask, attn_mask, causal: bool,
               need_weights: bool = False, average_attn_weights: bool = True):
        """The attention of forward, with `causal` applied besides any mask."""
        query, key, value = dsl.operands(query, key, value)
        unbatched = query.ndim == 2
        q, k, v = self._batch_first(query, key, value, unbatched)
        n, length, source = q.shape[0], q.shape[1], k.shape[1]
        q, k, v = self._projections(q, k, v, query is key and key is value)
        mask = self._masks(attn_mask, key_padding_mask, n, length, source, unbatched, q.dtype)
        if self.bias_k is not None:
            k = dsl.concat([k, dsl.broadcast_to(self.bias_k, (n, 1, self.embed_dim))], axis=1)
            v = dsl.concat([v, dsl.broadcast_to(self.bias_v, (n, 1, self.embed_dim))], axis=1)
            mask = _pad_keys(mask)
        q, k, v = (self._heads(x) for x in (q, k, v))
        if self.add_zero_attn:
            zeros = dsl.broadcast_to(dsl.operands(0.0, reference=k.dtype)[0],
                                     (n, self.num_heads, 1, self.head_dim))
            k, v = dsl.concat([k, zeros], axis=2), dsl.concat([v, zeros], axis=2)
            mask = _pad_keys(mask)
        rate = self.dropout if self.training else 0.0
        context = attention(q, k, v, mask, rate, causal, seed=self.seed)
        context = dsl.reshape(dsl.transpose(context, (0, 2, 1, 3)), (n, length, self.embed_dim))
        out = self.out_proj(context)
        out = self._restore(out, unbatched)
        if not need_weights:
            return out, None
        weights = self._weights(q, k, mask, causal, rate)
        if average_attn_weights:
            weights = dsl.mean(weights, axis=1)
        return out, (dsl.reshape(weights, tuple(weights.shape[1:])) if unbatched else weights)

    # ----- pieces ---------------------------------------------------------------------------
    def _batch_first(self, query: Node, key: Node, value: Node, unbatched: bool):
        """The three inputs as (N, L, features), checked."""
        rank = 2 if unbatched else 3
        for name, x, width in (("query", query, self.embed_dim), ("key", key, self.kdim),
                               ("value", value, self.vdim)):
            if x.ndim != rank or x.shape[-1] != width:
                form = "(L, E)" if unbatched else "(N, L, E)" if self.batch_first else "(L, N, E)"
                raise build_error(type(self).__name__, f"expected {name} {form} with "
                                  f"{width} features, got {shape_str(x.shape)} (query "
                                  f"{shape_str(query.shape)})")
        if unbatched:
            return tuple(dsl.reshape(x, (1,) + tuple(x.shape)) for x in (query, key, value))
        if self.batch_first:
            return query, key, value
        return tuple(dsl.transpose(x, (1, 0, 2)) for x in (query, key, value))

    def _restore(self, out: Node, unbatched: bool) -> Node:
        if unbatched:
            return dsl.reshape(out, tuple(out.shape[1:]))
        return out if self.batch_first else dsl.transpose(out, (1, 0, 2))

    def _projections(self, q: Node, k: Node, v: Node, same: bool):
        """q, k and v projected (one matmul for self-attention with packed weights)."""
        e, b = self.embed_dim, self.in_proj_bias
        if self._same_dims and same:
            y = q @ dsl.transpose(self.in_proj_weight)
            y = y + b if b is not None else y
            return y[..., :e], y[..., e:2 * e], y[..., 2 * e:]
        out = []
        for k_part, x in enumerate((q, k, v)):
            w = self.in_proj_weight[k_part * e:(k_part + 1) * e] if self._same_dims else \
                getattr(self, "qkv"[k_part] + "_proj_weight")
            y = x @ dsl.transpose(w)
            out.append(y + b[k_part * e:(k_part + 1) * e] if b is not None else y)
        return tuple(out)

    def _heads(self, x: Node) -> Node:
        """(N, L, E) -> (N, heads, L, E / heads), a view the attention reads in place."""
        n, length = x.shape[0], x.shape[1]
        return dsl.transpose(dsl.reshape(x, (n, length, self.num_heads, self.head_dim)),
                             (0, 2, 1, 3))

    def _masks(self, attn_mask, key_padding_mask, n, length, source, unbatched, dtype):
        """attn_mask and key_padding_mask as one mask for the attention, broadcasting to
        (N, heads, L, S): bool True = may attend (both bool), else a float to add."""
        parts = []
        if attn_mask is not None:
            (attn_mask,) = dsl.operands(attn_mask, reference=dtype)
            if attn_mask.ndim == 3:
                if tuple(attn_mask.shape[1:]) != (length, source):
                    raise self._mask_error("attn_mask", attn_mask, "(N * heads, L, S)")
                attn_mask = dsl.reshape(attn_mask, (n, self.num_heads, length, source))
            elif attn_mask.ndim != 2 or tuple(attn_mask.shape) != (length, source):
                raise self._mask_error("attn_mask", attn_mask, "(L, S) or (N * heads, L, S)")
            parts.append(attn_mask)
        if key_padding_mask is not None:
            (key_padding_mask,) = dsl.operands(key_padding_mask, reference=dtype)
            expected = (source,) if unbatched else (n, source)
            if len(key_padding_mask.shape) != len(expected) or \
                    key_padding_mask.shape[-1] != source:
                raise self._mask_error("key_padding_mask", key_padding_mask,
                                       "(S,)" if unbatched else "(N, S)")
            parts.append(key_padding_mask if unbatched else
                         dsl.reshape(key_padding_mask, (n, 1, 1, source)))
        for part in parts:
            if part.dtype != np.bool_ and part.dtype != dtype:
                raise build_error(type(self).__name__, f"masks must be bool or {dtype.name}, "
                                  f"got {part.dtype.name}", dtype=True)
        if not parts:
            return None
        if all(p.dtype == np.bool_ for p in parts):
            masked = parts[0] if len(parts) == 1 else dsl.logical_or(*parts)
            return dsl.logical_not(masked)
        lowest, zero = dsl.operands(-math.inf, 0.0, reference=dtype)
        added = [dsl.where(p, lowest, zero) if p.dtype == np.bool_ else p for p in parts]
        return added[0] if len(added) == 1 else added[0] + added[1]

    def _mask_error(self, name: str, mask: Node, form: str) -> Exception:
        return build_error(type(self).__name__, f"{name} must be {form}, got "
                           f"{shape_str(mask.shape)}")

    def _weights(self, q, k, mask, causal: bool, rate: float) -> Node:
        """The attention weights (N, heads, L, S), composed: what the attention computes
        inside (zeros for a query that may attend nothing, the same dropout)."""
        scores = (q @ dsl.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(self.head_dim))
        (lowest,) = dsl.operands(-math.inf, reference=scores.dtype)
        if mask is not None:
            scores = dsl.where(mask, scores, lowest) if mask.dtype == np.bool_ else scores + mask
        if causal:
            rows, cols = scores.shape[-2:]
            if not isinstance(rows, int) or not isinstance(cols, int):
                raise build_error(type(self).__name__, "need_weights with a causal mask needs "
                                  "static sequence lengths")
            later = dsl.constant(np.triu(np.ones((rows, cols), bool), k=1))
            scores = dsl.where(later, lowest, scores)
        top = dsl.max(scores, -1, keepdims=True)
        nothing = dsl.equal(top, lowest)
        weights = dsl.where(nothing, 0.0, softmax(dsl.where(nothing, 0.0, scores), -1))
        return dropout(weights, rate, seed=self.seed) if rate else weights

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


def _pad_keys(mask: Node | None) -> Node | None:
    """A mask with one more key column that every query may attend (PyTorch pads masks so
    for bias_k/bias_v and add_zero_attn)."""
    if mask is None:
        return None
    shape = tuple(mask.shape[:-1]) + (1,)
    fill = True if mask.dtype == np.bool_ else 0.0
    column = dsl.broadcast_to(dsl.operands(fill, reference=mask.dtype)[0], shape)
    return dsl.concat([mask, column], axis=-1)


class MultiHeadAttention(MultiheadAttention):
    """graphc's attention layer: MultiheadAttention's params (so a PyTorch state_dict
    loads), batch-first by default, called as `layer(x)` for self-attention (or
    `layer(query, key, value)`) and returning the output alone. causal=True masks every
    later key (with attn_mask too: both apply); attn_mask and key_padding_mask as
    PyTorch's (bool True = may not attend, or float added)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 causal: bool = False, batch_first: bool = True, kdim: int | None = None,
                 vdim: int | None = None, rng=None, dtype="float32", **options):
        super().__init__(embed_dim, num_heads, dropout, bias, kdim=kdim, vdim=vdim,
                         batch_first=batch_first, dtype=dtype, rng=rng, **options)
        self.causal = causal

    def forward(self, query, key=None, value=None, attn_mask=None, key_padding_mask=None,
                is_causal: bool | None = None) -> Node:
        key = query if key is None else key
        value = key if value is None else value
        causal = self.causal if is_causal is None else bool(is_causal)
        return self.attend(query, key, value, key_padding_mask, attn_mask, causal)[0]

    def extra_repr(self) -> str:
        return super().extra_repr() + f", causal={self.causal}"
