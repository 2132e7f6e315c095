"""Gradients of reductions: broadcast the incoming gradient back over the reduced axes."""

from __future__ import annotations

from graphc import dsl, dtypes
from graphc.ir.node import Node
from graphc.ops.reduction import reduced_shape
from graphc.shapes import as_dim, size


def _expand(g: Node, x: Node, axes) -> Node:
    """g, with the reduced axes restored as size 1 and broadcast to x's shape."""
    kept = dsl.reshape(g, reduced_shape(x.shape, axes, keepdims=True))
    return dsl.broadcast_to(kept, x.shape)


def dim_value(dim, dtype) -> Node:
    """A scalar graph value of a (possibly symbolic) dim."""
    if isinstance(dim, int):
        (node,) = dsl.operands(float(dim), reference=dtypes.as_dtype(dtype))
        return node
    return Node.make("dim_value", (), dim=dim, dtype=dtypes.as_dtype(dtype).name)


def reduction_grad(node: Node, out_grad: Node) -> list[Node | None]:
    (x,) = node.inputs
    axes = node.attrs["axes"]
    g = _expand(out_grad, x, axes)
    if node.op == "sum":
        return [g]
    if node.op == "mean":
        count = as_dim(size(tuple(x.shape[a] for a in axes)))
        return [g / dim_value(count, x.dtype)]
    # max / min: the gradient is shared equally among the positions that attain it.
    hit = dsl.cast(dsl.equal(x, _expand(node, x, axes)), x.dtype)
    ties = _expand(dsl.sum(hit, axes, keepdims=False), x, axes)
    return [g * hit / ties]
