"""Gradient of matmul: dA = G @ B^T, dB = A^T @ G, summed over broadcast batch dims."""

from __future__ import annotations

from graphc import dsl
from graphc.autodiff.broadcast import unbroadcast
from graphc.ir.node import Node
from graphc.shapes import size


def _swap_last(x: Node) -> Node:
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return dsl.transpose(x, axes)


def matmul_grad(node: Node, out_grad: Node) -> list[Node]:
    a, b = node.inputs
    grad_a = dsl.matmul(out_grad, _swap_last(b))
    if b.ndim == 2 and a.ndim > 2:
        # A weight shared by every batch: one GEMM over all rows, not one per batch summed.
        rows = size(a.shape[:-1])  # not -1: it cannot be inferred next to a 0 dim
        rows_a = dsl.reshape(a, (rows, a.shape[-1]))
        rows_g = dsl.reshape(out_grad, (rows, out_grad.shape[-1]))
        grad_b = dsl.matmul(_swap_last(rows_a), rows_g)
    else:
        grad_b = dsl.matmul(_swap_last(a), out_grad)
    return [unbroadcast(grad_a, a.shape), unbroadcast(grad_b, b.shape)]
