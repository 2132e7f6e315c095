"""Matrix multiplication: 2-D and batched, batch dims broadcast as numpy.matmul does; its
builder (1-D operands too) and its gradient: dA = G @ B^T, dB = A^T @ G, summed over
broadcast batch dims."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, register_class
from graphc.ops.leaf import operands
from graphc.ops.shape import reshape, transpose, unbroadcast
from graphc.shapes import broadcast, dims_equal, shape_str, size

__all__ = [  # the public builders (graphc/dsl.py)
    "matmul",
]


@register_class
class MatMul(Op):
    """(..., M, K) @ (..., K, N) -> (..., M, N). 1-D operands are reshaped by gc.matmul."""

    name = "matmul"
    pattern = Pattern.OUT_FUSABLE
    epilogue = "fused_matmul"

    def infer(self, inputs, attrs):
        a, b = inputs
        if a.ndim < 2 or b.ndim < 2:
            raise build_error(self.name, f"operands must be at least 2-D, got "
                              f"{shape_str(a.shape)} and {shape_str(b.shape)}")
        if not dims_equal(a.shape[-1], b.shape[-2]):
            raise build_error(self.name, f"inner dims differ: {shape_str(a.shape)} @ "
                              f"{shape_str(b.shape)} ({a.shape[-1]} != {b.shape[-2]})")
        try:
            batch = broadcast(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise build_error(self.name, f"batch dims of {shape_str(a.shape)} and "
                              f"{shape_str(b.shape)} do not broadcast") from None
        kinds = (a.dtype, b.dtype)
        if dtypes.BOOL in kinds:
            raise build_error(self.name, f"does not take bool operands (got {a.dtype.name} and "
                              f"{b.dtype.name})", dtype=True)
        return dtypes.promote(*kinds), batch + (a.shape[-2], b.shape[-1])

    def numpy(self, node, args, env):
        a, b = (x.astype(node.dtype, copy=False) for x in args)
        with np.errstate(all="ignore"):  # inf and NaN as IEEE says, silently (as + and *)
            return np.matmul(a, b)

    def grad(self, node, out_grad):
        a, b = node.inputs
        grad_a = matmul(out_grad, _swap_last(b))
        if b.ndim == 2 and a.ndim > 2:
            # A weight shared by every batch: one GEMM over all rows, not one per batch summed.
            rows = size(a.shape[:-1])  # not -1: it cannot be inferred next to a 0 dim
            rows_a = reshape(a, (rows, a.shape[-1]))
            rows_g = reshape(out_grad, (rows, out_grad.shape[-1]))
            grad_b = matmul(_swap_last(rows_a), rows_g)
        else:
            grad_b = matmul(_swap_last(a), out_grad)
        return [unbroadcast(grad_a, a.shape), unbroadcast(grad_b, b.shape)]


def _swap_last(x: Node) -> Node:
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return transpose(x, axes)


def matmul(a, b) -> Node:
    """numpy.matmul: 2-D, batched with broadcast batch dims, and 1-D operands."""
    a, b = operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise build_error("matmul", f"operands must not be scalars, got {shape_str(a.shape)} "
                          f"and {shape_str(b.shape)}")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if not dims_equal(inner_a, inner_b):
        raise build_error("matmul", f"inner dims differ: {shape_str(a.shape)} @ "
                          f"{shape_str(b.shape)} ({inner_a} != {inner_b})")
    squeeze = []
    if a.ndim == 1:
        a = reshape(a, (1, a.shape[0]))
        squeeze.append(-2)
    if b.ndim == 1:
        b = reshape(b, (b.shape[0], 1))
        squeeze.append(-1)
    out = Node.make("matmul", (a, b))
    if squeeze:
        keep = [d for k, d in enumerate(out.shape) if k - out.ndim not in squeeze]
        out = reshape(out, tuple(keep))
    return out
