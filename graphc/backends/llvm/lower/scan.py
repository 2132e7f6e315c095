"""Scans along one axis (graphc/ops/scan.py): cumsum, cumprod and the index of the running
maximum or minimum. The input is (outer, n, inner) around the axis; each element of a line
follows the one before it along the axis, in the same order on any thread count. Threads
split the outer rows (or, with one row, the inner columns); the inner columns of a step
are one unit-stride loop, which vectorizes."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.codegen.irtypes import convert, i64, llvm_type
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.reduction import Accumulator


def around(shape, axis: int) -> tuple[int, int, int]:
    """(outer, n, inner): the element counts before, along and after an axis."""
    return (int(np.prod(shape[:axis], dtype=np.int64)), shape[axis],
            int(np.prod(shape[axis + 1:], dtype=np.int64)))


def _shares(k, outer: int, inner: int):
    """This thread's (outer rows, inner columns)."""
    if outer == 1:
        return (i64(0), i64(1)), k.split(inner, 16)
    return k.split(outer), (i64(0), i64(inner))


@lowering("cumsum", "cumprod")
def emit_scan(k, node, out, ins, scratch) -> None:
    (x,) = ins
    outer, n, inner = around(x.shape, node.attrs["axis"])
    if out.size == 0:
        return
    reverse = bool(node.attrs.get("reverse"))
    acc = Accumulator(k, "sum" if node.op == "cumsum" else "prod", out.dtype, n)
    b = k.b
    rows, (j0, j1) = _shares(k, outer, inner)

    def step(o, r):
        """The element offset of (o, r, 0), r counted from the scan's start."""
        along = b.sub(i64(n - 1), r) if reverse else r
        return b.add(b.mul(o, i64(n * inner)), b.mul(along, i64(inner)))

    with k.loop(*rows, "o") as o:
        first = step(o, i64(0))
        with k.loop(j0, j1, "j") as j:
            at = b.add(first, j)
            value = convert(b, k.load(x.ptr, x.dtype, at), x.dtype, out.dtype)
            k.store(value, out.ptr, out.dtype, at)
        with k.loop(1, n, "r") as r:
            here, before = step(o, r), step(o, b.sub(r, i64(1)))
            with k.loop(j0, j1, "j") as j:
                value = convert(b, k.load(x.ptr, x.dtype, b.add(here, j)), x.dtype, out.dtype)
                total = acc.combine(k.load(out.ptr, out.dtype, b.add(before, j)), value)
                k.store(total, out.ptr, out.dtype, b.add(here, j))


@lowering("cummax_index", "cummin_index")
def emit_running_index(k, node, out, ins, scratch) -> None:
    """For each line: the running extremum and where it was last met (x >= best for a
    maximum, or x is NaN), written at every step."""
    (x,) = ins
    outer, n, inner = around(x.shape, node.attrs["axis"])
    if out.size == 0:
        return
    b = k.b
    compare = ">=" if node.op == "cummax_index" else "<="
    floating = x.dtype.kind == "f"
    best_slot = k.alloca(llvm_type(x.dtype))
    index_slot = k.alloca(llvm_type(out.dtype))
    start, stop = k.split(outer * inner)
    with k.loop(start, stop, "line") as line:
        base = b.add(b.mul(b.udiv(line, i64(inner)), i64(n * inner)), b.urem(line, i64(inner)))
        b.store(k.load(x.ptr, x.dtype, base), best_slot)
        b.store(i64(0), index_slot)
        with k.loop(0, n, "r") as r:
            at = b.add(base, b.mul(r, i64(inner)))
            value = k.load(x.ptr, x.dtype, at)
            best = b.load(best_slot)
            if floating:
                take = b.or_(b.fcmp_ordered(compare, value, best),
                             b.fcmp_unordered("uno", value, value))
            else:
                take = b.icmp_signed(compare, value, best)
            b.store(b.select(take, value, best), best_slot)
            index = b.select(take, r, b.load(index_slot))
            b.store(index, index_slot)
            k.store(index, out.ptr, out.dtype, at)
