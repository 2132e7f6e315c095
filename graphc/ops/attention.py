"""scaled_dot_product_attention as one op, PyTorch's semantics, with its own backward.

softmax(q k^T * scale + mask) v over the last two axes of (..., L, E) queries and
(..., S, E) keys / (..., S, Ev) values, leading axes broadcast; with enable_gqa the axis
before them is the heads axis and each group of Hq / Hkv query heads shares one key/value
head (PyTorch's repeat_interleave). A bool mask is True where a query may attend, a float
mask is added to the scores; is_causal lets query i attend keys j <= i (top-left aligned);
a query that may attend nothing gets zeros (and zero gradients), as PyTorch's. Dropout
(dropout_p) drops attention weights with graphc's counter-based generator (ops/random.py)
indexed over the (..., L, S) weights, so it is gc.dropout of the weights bit for bit.

Three ops: the forward, "attention_backward" (dq, dk, dv in one kernel: a multi-output op
read through output_part) and "attention_mask_grad" (a float mask's gradient, built only
when something needs it). Each NumPy reference computes plainly, with the (L, S) matrices;
the LLVM kernels (backends/llvm/lower/attention.py) keep one row of scores at a time and
recompute them in the backward, so no (L, S) matrix is stored between the passes.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.ops.composite import fresh_dropout_seed
from graphc.ops.leaf import operands
from graphc.ops.multi_output import output_parts
from graphc.ops.random import uniform
from graphc.ops.shape import unbroadcast
from graphc.shapes import Shape, broadcast, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "scaled_dot_product_attention",
]

OP = "scaled_dot_product_attention"


@dataclass(frozen=True)
class Geometry:
    """The canonical form of one attention: queries (*batch, Hq, L, E), keys (*batch, Hkv,
    S, E), values (*batch, Hkv, S, Ev), with Hq = Hkv = 1 (the heads axis, if any, part of
    batch) unless GQA. `lead` is the output's leading shape (batch, then Hq under GQA)."""

    batch: Shape
    hq: int
    hkv: int
    L: object
    S: object
    E: object
    Ev: object
    gqa: bool

    @classmethod
    def of(cls, q: Shape, k: Shape, v: Shape, gqa: bool) -> Geometry:
        rest = 3 if gqa else 2
        batch = broadcast(q[:-rest], k[:-rest], v[:-rest])
        hq, hkv = (q[-3], k[-3]) if gqa else (1, 1)
        return cls(batch, hq, hkv, q[-2], k[-2], q[-1], v[-1], gqa)

    @property
    def lead(self) -> Shape:
        return self.batch + ((self.hq,) if self.gqa else ())

    @property
    def kv_lead(self) -> Shape:
        return self.batch + ((self.hkv,) if self.gqa else ())

    @property
    def scores(self) -> Shape:
        """The shape of the attention weights (and of a mask broadcast to them)."""
        return self.lead + (self.L, self.S)

    @property
    def group(self) -> int:
        return self.hq // self.hkv


def _check(inputs, attrs) -> Geometry:
    """The geometry of (q, k, v[, mask]) with these attrs; raises naming the problem."""
    q, k, v = inputs[:3]
    for name, x in (("key", k), ("value", v)):
        if x.dtype != q.dtype:
            raise build_error(OP, f"query is {q.dtype.name} but {name} is {x.dtype.name}",
                              dtype=True)
    if not dtypes.is_float(q.dtype):
        raise build_error(OP, f"needs float query, key and value, got {q.dtype.name}",
                          dtype=True)
    gqa = attrs["gqa"]
    least = 3 if gqa else 2
    shapes = f"query {shape_str(q.shape)}, key {shape_str(k.shape)}, value {shape_str(v.shape)}"
    if min(q.ndim, k.ndim, v.ndim) < least:
        raise build_error(OP, f"needs inputs of at least {least} dims "
                          f"{'(..., heads, L, E) with enable_gqa' if gqa else '(..., L, E)'}, "
                          f"got {shapes}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise build_error(OP, f"query and key must share their last dim and key and value "
                          f"their sequence dim, got {shapes}")
    if gqa:
        hq, hkv = q.shape[-3], k.shape[-3]
        if v.shape[-3] != hkv or not all(isinstance(h, int) for h in (hq, hkv)) \
                or hq % hkv:
            raise build_error(OP, f"enable_gqa needs static head counts, key's and value's "
                              f"equal and dividing query's, got {shapes}")
    try:
        geometry = Geometry.of(q.shape, k.shape, v.shape, gqa)
    except ValueError:
        raise build_error(OP, f"the leading dims do not broadcast: {shapes}") from None
    if len(inputs) == 4:
        mask = inputs[3]
        if mask.dtype != dtypes.BOOL and mask.dtype != q.dtype:
            raise build_error(OP, f"attn_mask must be bool or {q.dtype.name} (the query's "
                              f"dtype), got {mask.dtype.name}", dtype=True)
        try:
            fits = broadcast(mask.shape, geometry.scores) == tuple(geometry.scores)
        except ValueError:
            fits = False
        if not fits:
            raise build_error(OP, f"attn_mask of shape {shape_str(mask.shape)} does not "
                              f"broadcast to the attention weights "
                              f"{shape_str(geometry.scores)} ({shapes})")
    return geometry


class _Attention(Op):
    """attrs: scale (float), causal (bool), dropout (float in [0, 1]), seed (int), gqa
    (bool); inputs (q, k, v) or (q, k, v, mask) first."""

    def geometry(self, node: Node) -> Geometry:
        q, k, v = node.inputs[:3]
        return Geometry.of(q.shape, k.shape, v.shape, node.attrs["gqa"])

    @staticmethod
    def masked(node: Node) -> bool:
        """Whether a mask is among the inputs: (q, k, v, mask) or (q, k, v, mask, out, g)."""
        return len(node.inputs) in (4, 6)


@register_class
class ScaledDotProductAttention(_Attention):
    name = OP

    def infer(self, inputs, attrs):
        if len(inputs) not in (3, 4):
            raise build_error(self.name, "takes query, key, value and an optional mask")
        geometry = _check(inputs, attrs)
        return inputs[0].dtype, geometry.lead + (geometry.L, geometry.Ev)

    def numpy(self, node, args, env):
        return reference(node, args, env.step)[0]

    def grad(self, node, out_grad):
        q, k, v = node.inputs[:3]
        back = Node.make("attention_backward", node.inputs + (node, out_grad), **node.attrs)
        dq, dk, dv = output_parts(back)
        grads = [unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape)]
        if len(node.inputs) == 4:
            mask = node.inputs[3]
            if mask.dtype == dtypes.BOOL:
                grads.append(None)
            else:
                ds = Node.make("attention_mask_grad", back.inputs, **node.attrs)
                grads.append(unbroadcast(ds, mask.shape))
        return grads


class _Backward(_Attention):
    """inputs: (q, k, v[, mask], out, out_grad): the forward's inputs, its value, and the
    gradient of its value. Second derivatives are not supported (a clear error)."""

    def grad(self, node, out_grad):
        raise NotImplementedError(f"{self.name}: second derivatives of {OP} are not "
                                  "supported")

    def check(self, inputs, attrs) -> Geometry:
        if len(inputs) not in (5, 6):
            raise build_error(self.name, "takes the forward's inputs, its output and the "
                              "output's gradient")
        geometry = _check(inputs[:-2], attrs)
        out, g = inputs[-2:]
        expected = geometry.lead + (geometry.L, geometry.Ev)
        for x in (out, g):
            if tuple(x.shape) != tuple(expected) or x.dtype != inputs[0].dtype:
                raise build_error(self.name, f"output and gradient must be "
                                  f"{inputs[0].dtype.name}{shape_str(expected)}, got "
                                  f"{x.dtype.name}{shape_str(x.shape)}")
        return geometry


@register_class
class AttentionBackward(_Backward):
    """dq, dk, dv of the leading shapes the forward broadcast to (the gradient rule sums
    them down to the inputs' shapes)."""

    name = "attention_backward"

    def infer(self, inputs, attrs):
        geometry = self.check(inputs, attrs)
        return inputs[0].dtype, geometry.lead + (geometry.L, geometry.E)

    def output_types(self, node):
        g = self.geometry(node)
        return ((node.dtype, g.lead + (g.L, g.E)), (node.dtype, g.kv_lead + (g.S, g.E)),
                (node.dtype, g.kv_lead + (g.S, g.Ev)))

    def numpy(self, node, args, env):
        return backward_reference(node, args, env.step)[:3]


@register_class
class AttentionMaskGrad(_Backward):
    """The gradient of a float mask added to the scores, of the weights' shape."""

    name = "attention_mask_grad"

    def infer(self, inputs, attrs):
        return inputs[0].dtype, self.check(inputs, attrs).scores

    def numpy(self, node, args, env):
        return backward_reference(node, args, env.step)[3]


# ----- the references --------------------------------------------------------------------------
def _weights(node: Node, args, step: int):
    """(attention weights before dropout, the dropout factor of each (0 or 1/(1-p)), the
    geometry, q, k, v with k and v repeated over each GQA group), plainly."""
    attrs = node.attrs
    q, k, v = args[:3]
    g = _Attention().geometry(node)
    if g.gqa:
        k, v = (np.repeat(x, g.group, axis=-3) for x in (k, v))
    with np.errstate(all="ignore"):
        scores = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(attrs["scale"])
        masked = np.zeros(scores.shape, bool)
        if _Attention.masked(node):
            mask = args[3]
            if mask.dtype == np.bool_:
                masked = masked | ~mask
            else:
                scores = scores + mask
        if attrs["causal"]:
            rows, cols = scores.shape[-2:]
            masked = masked | (np.arange(cols)[None, :] > np.arange(rows)[:, None])
        scores = np.where(masked, -np.inf, scores)
        top = np.max(scores, axis=-1, keepdims=True) if scores.shape[-1] else \
            np.full(scores.shape[:-1] + (1,), -np.inf, scores.dtype)
        none = top == -np.inf  # rows that may attend nothing: zeros, as PyTorch's
        e = np.exp(scores - np.where(none, 0, top))
        weights = np.where(none, 0, e / np.where(none, 1, e.sum(-1, keepdims=True)))
    factor = np.ones((), q.dtype)
    p = attrs["dropout"]
    if p:
        count = int(np.prod(weights.shape, dtype=np.int64))
        keep = uniform(attrs["seed"], step, count).astype(q.dtype).reshape(weights.shape) >= \
            q.dtype.type(p)
        factor = np.where(keep, q.dtype.type(dropout_scale(p)), q.dtype.type(0))
    return weights.astype(q.dtype), factor, g, q, k, v


def dropout_scale(p: float) -> float:
    """What a kept attention weight is multiplied by: 1/(1-p) (0 when all are dropped)."""
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - p)


def reference(node: Node, args, step: int):
    """(out, weights before dropout, dropout factors), plainly."""
    weights, factor, _, _, _, v = _weights(node, args, step)
    with np.errstate(all="ignore"):
        out = np.matmul(weights * factor, v)
    return out.astype(node.dtype), weights, factor


def backward_reference(node: Node, args, step: int):
    """(dq, dk, dv, dmask) of the broadcast leading shapes, plainly."""
    weights, factor, g, q, k, v = _weights(node, args, step)
    dout = args[-1]
    lead = weights.shape[:-2]
    with np.errstate(all="ignore"):
        dv = np.matmul(np.swapaxes(weights * factor, -1, -2), dout)
        dweights = np.matmul(dout, np.swapaxes(v, -1, -2)) * factor
        ds = weights * (dweights - np.sum(dweights * weights, -1, keepdims=True))
        dscores = ds * q.dtype.type(node.attrs["scale"])
        dq = np.matmul(dscores, np.broadcast_to(k, lead + k.shape[-2:]))
        dk = np.matmul(np.swapaxes(dscores, -1, -2), np.broadcast_to(q, lead + q.shape[-2:]))
    dq = np.broadcast_to(dq, lead + dq.shape[-2:])
    if g.gqa:  # each key/value head's gradient sums over its group of query heads
        dk, dv = (x.reshape(x.shape[:-3] + (g.hkv, g.group) + x.shape[-2:]).sum(-3)
                  for x in (dk, dv))
    dt = q.dtype
    return (np.ascontiguousarray(dq, dt), np.ascontiguousarray(dk, dt),
            np.ascontiguousarray(dv, dt), np.ascontiguousarray(ds, dt))


# ----- the builders ----------------------------------------------------------------------------
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False, seed: int | None = None) -> Node:
    """torch.nn.functional.scaled_dot_product_attention: softmax(query key^T * scale +
    mask) value over (..., L, E) queries, (..., S, E) keys and (..., S, Ev) values (see the
    module docstring for masks, causality, GQA and fully masked rows). scale defaults to
    1/sqrt(E). dropout_p drops attention weights (apply it only while training, as in
    PyTorch); seed picks the dropout stream (default: a fresh one, as gc.dropout)."""
    if attn_mask is not None and isinstance(is_causal, (bool, np.bool_)) and is_causal:
        raise build_error(OP, "give attn_mask or is_causal=True, not both (as PyTorch)")
    return attention(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
                     seed)


def attention(query, key, value, mask=None, dropout_p: float = 0.0, causal: bool = False,
              scale: float | None = None, gqa: bool = False, seed: int | None = None) -> Node:
    """scaled_dot_product_attention allowing a mask and causality together (both apply):
    what layers use to combine a causal mask with a padding mask."""
    q, k, v = operands(query, key, value)
    if not isinstance(causal, (bool, np.bool_)) or not isinstance(gqa, (bool, np.bool_)):
        raise build_error(OP, "is_causal and enable_gqa must be bools")
    if not isinstance(dropout_p, numbers.Real) or isinstance(dropout_p, bool) \
            or not 0.0 <= dropout_p <= 1.0:
        raise build_error(OP, f"dropout_p must be in [0, 1], got {dropout_p!r}")
    if scale is None:
        if q.ndim < 1 or not isinstance(q.shape[-1], int) or q.shape[-1] < 1:
            raise build_error(OP, f"the default scale 1/sqrt(E) needs a static E, got query "
                              f"{shape_str(q.shape)}")
        scale = 1.0 / math.sqrt(q.shape[-1])
    if not isinstance(scale, numbers.Real) or isinstance(scale, bool) or \
            not math.isfinite(scale):
        raise build_error(OP, f"scale must be a finite number, got {scale!r}")
    inputs = (q, k, v)
    if mask is not None:
        (mask,) = operands(mask, reference=q.dtype)
        inputs += (mask,)
    if seed is None:
        seed = fresh_dropout_seed() if dropout_p else 0
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise build_error(OP, f"seed must be a nonnegative int, got {seed!r}")
    if not dropout_p:  # nothing reads the seed: equal attentions are one node, one kernel
        seed = 0
    return Node.make(OP, inputs, scale=float(scale), causal=bool(causal),
                     dropout=float(dropout_p), seed=int(seed), gqa=bool(gqa))
