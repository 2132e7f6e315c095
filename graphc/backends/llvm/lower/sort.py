"""argsort (graphc/ops/sort.py): a stable bottom-up merge sort of each line's indices along
the axis, in two int64 scratch runs per line (a line's passes are fixed at compile time,
since its length is). Threads split the lines; every index read is clamped inside its run,
so no load leaves the line."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.codegen.arith import smin
from graphc.backends.llvm.codegen.irtypes import I64, i64
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.scan import around


def _scratch(node, shapes) -> int:
    """Two int64 runs per element: the indices being merged and the merge's output."""
    return 2 * 8 * int(np.prod(shapes[0], dtype=np.int64))


def _before(k, a, b, floating: bool, descending: bool):
    """i1: whether value a sorts strictly before value b (NaN above every number)."""
    bld = k.b
    if not floating:
        return bld.icmp_signed(">" if descending else "<", a, b)
    a_nan = bld.fcmp_unordered("uno", a, a)
    b_nan = bld.fcmp_unordered("uno", b, b)
    if descending:
        return bld.or_(bld.fcmp_ordered(">", a, b), bld.and_(a_nan, bld.not_(b_nan)))
    return bld.or_(bld.fcmp_ordered("<", a, b), bld.and_(b_nan, bld.not_(a_nan)))


@lowering("argsort", scratch=_scratch)
def emit_argsort(k, node, out, ins, scratch) -> None:
    (x,) = ins
    outer, n, inner = around(x.shape, node.attrs["axis"])
    if out.size == 0:
        return
    b = k.b
    floating = x.dtype.kind == "f"
    descending = node.attrs["descending"]
    runs = (scratch, k.gep(scratch, np.dtype("int64"), i64(x.size)))
    i_slot, j_slot = k.alloca(I64), k.alloca(I64)
    int64 = np.dtype("int64")
    start, stop = k.split(outer * inner)
    with k.loop(start, stop, "line") as line:
        base = b.add(b.mul(b.udiv(line, i64(inner)), i64(n * inner)), b.urem(line, i64(inner)))
        own = b.mul(line, i64(n))  # this line's runs in the scratch

        def key(run, position):
            index = k.load(run, int64, b.add(own, position))
            return index, k.load(x.ptr, x.dtype, b.add(base, b.mul(index, i64(inner))))

        with k.loop(0, n, "p") as p:
            k.store(p, runs[0], int64, b.add(own, p))
        width, source = 1, 0
        while width < n:
            src, dst = runs[source], runs[1 - source]
            with k.loop(0, (n + 2 * width - 1) // (2 * width), "block") as block:
                lo = b.mul(block, i64(2 * width))
                mid = smin(b, b.add(lo, i64(width)), i64(n))
                hi = smin(b, b.add(lo, i64(2 * width)), i64(n))
                last = b.sub(hi, i64(1))
                b.store(lo, i_slot)
                b.store(mid, j_slot)
                with k.loop(lo, hi, "t") as t:
                    i, j = b.load(i_slot), b.load(j_slot)
                    left, left_value = key(src, smin(b, i, last))
                    right, right_value = key(src, smin(b, j, last))
                    left_done = b.icmp_signed(">=", i, mid)
                    right_done = b.icmp_signed(">=", j, hi)
                    right_first = _before(k, right_value, left_value, floating, descending)
                    take_right = b.or_(left_done, b.and_(b.not_(right_done), right_first))
                    k.store(b.select(take_right, right, left), dst, int64, b.add(own, t))
                    b.store(b.select(take_right, i, b.add(i, i64(1))), i_slot)
                    b.store(b.select(take_right, b.add(j, i64(1)), j), j_slot)
            width, source = 2 * width, 1 - source
        with k.loop(0, n, "p") as p:
            k.store(k.load(runs[source], int64, b.add(own, p)), out.ptr, out.dtype,
                    b.add(base, b.mul(p, i64(inner))))
