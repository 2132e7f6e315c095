"""TopK onto gc.topk: the k largest (or smallest) along an axis, with their int64
indices; among equal values the lower index comes first, as ONNX asks. Unsorted output
(sorted=0) may come in any order: graphc gives it sorted."""

from __future__ import annotations

from graphc.onnx.converters.common import axis_of
from graphc.onnx.registry import converter
from graphc.ops.elementwise import cast
from graphc.ops.sort import topk


@converter("TopK")
def topk_(ctx):
    x = ctx.input(0)
    k = ctx.static_ints(1, "K")
    if len(k) != 1 or k[0] < 0:
        raise ctx.error(f"K must be one nonnegative number, got {k}")
    axis = axis_of(ctx, ctx.attr("axis", -1), x.ndim)
    size = x.shape[axis]
    if isinstance(size, int) and k[0] > size:
        raise ctx.error(f"K={k[0]} is more than axis {axis}'s size {size}")
    result = topk(x, k[0], axis, largest=bool(ctx.attr("largest", 1)))
    values, indices = result
    return values, (indices if indices.dtype.name == "int64" else cast(indices, "int64"))
