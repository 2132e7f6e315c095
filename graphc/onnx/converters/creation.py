"""EyeLike and Trilu: ones on a diagonal of an input's shape, and a matrix's upper or
lower triangle, onto graphc's ones, tril and triu (the k-th diagonal of ones is the
lower triangle, up to k, of the upper triangle from k)."""

from __future__ import annotations

from graphc.onnx.converters.elementwise import target_dtype
from graphc.onnx.registry import converter
from graphc.ops.creation import ones, tril, triu
from graphc.shapes import shape_str


@converter("EyeLike")
def eye_like(ctx):
    x = ctx.input(0)
    if x.ndim != 2:
        raise ctx.error(f"needs a 2-D input, got {shape_str(x.shape)}")
    dtype = target_dtype(ctx, ctx.attr("dtype")) if ctx.has_attr("dtype") else x.dtype
    k = int(ctx.attr("k", 0))
    return tril(triu(ones(*x.shape, dtype=dtype), k), k)


@converter("Trilu")
def trilu(ctx):
    x = ctx.input(0)
    if x.ndim < 2:
        raise ctx.error(f"needs an input of rank 2 or more, got {shape_str(x.shape)}")
    k = ctx.static_ints(1, "k", (0,)) if ctx.has_input(1) else (0,)
    if len(k) != 1:
        raise ctx.error(f"k must be one number, got {k}")
    return (triu if ctx.attr("upper", 1) else tril)(x, k[0])
