"""Undoing broadcasting in gradients: sum over the axes an operand was broadcast along."""

from __future__ import annotations

from graphc.ir.node import Node
from graphc.shapes import Shape, dims_equal


def unbroadcast(g: Node, shape: Shape) -> Node:
    """g (of a broadcast shape) summed down to `shape`."""
    from graphc.dsl import reshape, sum

    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = list(range(lead))
    for k, dim in enumerate(shape):
        if isinstance(dim, int) and dim == 1 and not (
                isinstance(g.shape[lead + k], int) and g.shape[lead + k] == 1):
            axes.append(lead + k)
        elif not dims_equal(dim, g.shape[lead + k]) and not dim == 1:
            raise ValueError(f"cannot unbroadcast {g.shape} to {shape}")
    out = sum(g, tuple(axes)) if axes else g
    return reshape(out, shape)
