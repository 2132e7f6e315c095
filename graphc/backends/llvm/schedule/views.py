"""Strided views: values read in place from their source's buffer. A transpose, slice or
reshape whose every reader can follow strides (a matmul operand, a copy kernel, another
such view) is an offset and strides into the buffer it comes from, so no kernel computes
it. Which ops can be views and which operands a kernel reads by strides are facts of
their lowerings (`strided_view`, `reads_strided`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from graphc.ir.node import Node
from graphc.ir.program import Program

ALIGN = 64  # bytes: every buffer starts on such a boundary, and so does a slice view


@dataclass(frozen=True)
class View:
    """A value read in place from its source's buffer: the element offset of its first
    element and the element stride of each axis."""

    offset: int
    strides: tuple[int, ...]


def strided_views(program: Program, nodes: list[Node], shapes, table: dict) -> dict[Node, View]:
    """Transposes, slices and reshapes whose every reader reads through strides (a matmul
    operand, a copy kernel, another such view), as views of the buffer they come from:
    no kernel computes them. A slice view starts on a 64-byte boundary (kernels may load
    vectors aligned from a buffer's start). Results and update values are computed."""
    def view_of(node: Node, base: View) -> View | None:
        """`node` as a view of the buffer `base` describes, or None."""
        return table[node.op].strided_view(node, base, shapes[node.inputs[0]], shapes[node])

    kept = set(program.outputs) | {value for _, value in program.updates}
    layout: dict[Node, View] = {}
    for node in nodes:
        if table[node.op].strided_view is not None and node not in kept:
            source = node.inputs[0]
            base = layout.get(source, View(0, tuple(contiguous_strides(shapes[source]))))
            view = view_of(node, base)
            if view is not None:
                layout[node] = view
    readers: dict[Node, list[tuple[Node, int]]] = {}
    for node in nodes:
        for position, i in enumerate(node.inputs):
            readers.setdefault(i, []).append((node, position))

    def strided_ok(reader: Node, position: int) -> bool:
        if reader in layout:
            return True
        positions = table[reader.op].reads_strided
        return positions is None or position in positions

    changed = True
    while changed:  # a view some reader needs contiguous is computed (and so, its readers')
        changed = False
        for node in list(layout):
            if not all(strided_ok(r, p) for r, p in readers.get(node, [])):
                del layout[node]
                changed = True
        for node in list(layout):  # re-derive from sources that became contiguous
            source = node.inputs[0]
            base = layout.get(source, View(0, tuple(contiguous_strides(shapes[source]))))
            view = view_of(node, base)
            if view != layout[node]:
                changed = True
                if view is None:
                    del layout[node]
                else:
                    layout[node] = view
    # A reshape or stop_gradient (a "view" lowering) of a computed value is a plain view
    # of it already.
    return {n: v for n, v in layout.items()
            if table[n.op].kind != "view" or n.inputs[0] in layout}


def reshape_strides(shape, strides, new_shape) -> tuple[int, ...] | None:
    """Strides that give `new_shape` the same elements in the same order as `shape` with
    `strides`, or None when no strides can (axes merged across a gap)."""
    if math.prod(shape) == 0:
        return tuple(contiguous_strides(tuple(new_shape)))
    # Axes of size 1 carry no stride; the rest fall into runs that are contiguous in
    # the source (stride[i] == stride[i+1] * shape[i+1]).
    dims = [(d, s) for d, s in zip(shape, strides) if d != 1]
    out: list[int] = []
    i = 0
    for d in new_shape:
        if d == 1:
            out.append(0)
            continue
        if i >= len(dims):
            return None
        size, stride = dims[i]
        i += 1
        while size < d and i < len(dims) and dims[i - 1][1] == dims[i][1] * dims[i][0]:
            size *= dims[i][0]
            stride = dims[i][1]
            i += 1
        if size == d:
            out.append(stride)
            continue
        if size > d and size % d == 0:  # split an axis: push the remainder back
            rest = size // d
            out.append(stride * rest)
            i -= 1
            dims[i] = (rest, stride)
            continue
        return None
    if i != len(dims):
        return None
    return tuple(out)



def contiguous_strides(shape: tuple[int, ...]) -> list[int]:
    """The element strides of a C-contiguous array of `shape`."""
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return strides[::-1]
