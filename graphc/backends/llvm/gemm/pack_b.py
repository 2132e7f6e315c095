"""Packing a strided B into panels of NR columns."""

from __future__ import annotations

from llvmlite import ir

from graphc.backends.llvm.codegen.arith import smin
from graphc.backends.llvm.codegen.irtypes import I1, const, convert, i64, llvm_type
from graphc.backends.llvm.codegen.vector import lanes, transpose, vector_bytes
from graphc.backends.llvm.gemm.blocking import nr

ROW_GROUP = 4  # rows of a B with adjacent columns packed together into each panel


def pack_strided_b(k, f, ptr, src, dtype, base, start, count, pc, kc, dest) -> None:
    """Pack columns [start, start+count) of a strided B over depth [pc, pc+kc) into panels
    of NR: dest[q * NR * kc + p * NR + t]; columns past N as zeros. Full panels of the
    compute dtype are read with vectors: one load per depth when the columns are adjacent,
    lanes x lanes blocks transposed with shuffles when the depths are (a transposed B)."""
    b = k.b
    width = nr(dtype)
    n_lanes = lanes(dtype)
    vec_src = ir.VectorType(llvm_type(src), width)
    panels = b.sdiv(b.add(count, i64(width - 1)), i64(width))
    first_panel = i64(0)
    if src == dtype:
        # Adjacent columns: the full panels a group of ROW_GROUP rows of B at a time,
        # panel after panel (each panel's group one contiguous write; the group's rows
        # read along as the panels go). A panel at a time, every load was a row further
        # on (a new page, the same cache set); a row at a time, every store a panel
        # further on (kc * NR elements apart). All but the micro-kernel of a 1024^3 GEMM
        # (both packings) took ~1.6 ms a row at a time, ~0.9 in groups of 4 (8, 16 alike).
        rows_whole = b.icmp_signed("==", f["b_cs"], i64(1))
        full_panels = b.select(rows_whole, b.sdiv(smin(b, count, b.sub(f["n"], start)),
                                                  i64(width)), i64(0))
        groups = b.sdiv(kc, i64(ROW_GROUP))

        def copy(p0, depths):
            rows = [b.add(base, b.add(b.mul(b.add(pc, b.add(p0, i64(d))), f["b_rs"]), start))
                    for d in range(depths)]
            with k.loop(0, full_panels, "panel") as q:
                col = b.mul(q, i64(width))
                slot = b.add(b.mul(p0, i64(width)), b.mul(col, kc))
                for d, row in enumerate(rows):
                    v = b.load(k.gep(ptr, src, b.add(row, col)), typ=vec_src,
                               align=src.itemsize)
                    b.store(v, k.gep(dest, dtype, b.add(slot, i64(d * width))),
                            align=vector_bytes())

        with k.loop(0, groups, "pgroup") as g:
            copy(b.mul(g, i64(ROW_GROUP)), ROW_GROUP)
        with k.loop(b.mul(groups, i64(ROW_GROUP)), kc, "p") as p:
            copy(p, 1)
        first_panel = full_panels
    with k.loop(first_panel, panels, "panel") as q:
        first = b.add(start, b.mul(q, i64(width)))
        panel = b.mul(q, b.mul(kc, i64(width)))
        valid = b.sub(f["n"], first)
        full = b.icmp_signed(">=", valid, i64(width))
        adjacent_cols = b.and_(full, b.icmp_signed("==", f["b_cs"], i64(1)))
        adjacent_rows = b.and_(full, b.icmp_signed("==", f["b_rs"], i64(1)))
        if src != dtype:  # converting operands are packed element by element
            adjacent_cols = adjacent_rows = ir.Constant(I1, 0)
        with b.if_else(adjacent_cols) as (by_depth, other):
            with by_depth:
                with k.loop(0, kc, "p") as p:
                    row = b.add(base, b.mul(b.add(pc, p), f["b_rs"]))
                    v = b.load(k.gep(ptr, src, b.add(row, first)), typ=vec_src,
                               align=src.itemsize)
                    slot = k.gep(dest, dtype, b.add(panel, b.mul(p, i64(width))))
                    b.store(v, slot, align=vector_bytes())
            with other:
                with b.if_else(adjacent_rows) as (by_blocks, by_elements):
                    with by_blocks:
                        blocks = b.sdiv(kc, i64(n_lanes))
                        vec = ir.VectorType(llvm_type(dtype), n_lanes)
                        with k.loop(0, blocks, "pblock") as block:
                            p = b.mul(block, i64(n_lanes))
                            at = b.add(base, b.add(pc, p))
                            for part in range(0, width, n_lanes):
                                columns = [
                                    b.load(k.gep(ptr, src, b.add(at, b.mul(
                                        b.add(first, i64(part + c)), f["b_cs"]))),
                                        typ=vec, align=src.itemsize)
                                    for c in range(n_lanes)]
                                for d, values in enumerate(transpose(b, columns)):
                                    slot = b.add(panel, b.add(
                                        b.mul(b.add(p, i64(d)), i64(width)), i64(part)))
                                    b.store(values, k.gep(dest, dtype, slot),
                                            align=vector_bytes())
                        _pack_b_elements(k, f, ptr, src, dtype, base, first, valid,
                                         b.mul(blocks, i64(n_lanes)), pc, kc, dest, panel)
                    with by_elements:
                        _pack_b_elements(k, f, ptr, src, dtype, base, first, valid, i64(0),
                                         pc, kc, dest, panel)


def _pack_b_elements(k, f, ptr, src, dtype, base, first, valid, p0, pc, kc, dest,
                     panel) -> None:
    """Depths [p0, kc) of one strided B panel, element by element (columns past N as
    zeros)."""
    b = k.b
    width = nr(dtype)
    zero = const(dtype, 0)
    last = b.sub(f["n"], i64(1))
    cols = [b.mul(smin(b, b.add(first, i64(t)), last), f["b_cs"]) for t in range(width)]
    with k.loop(p0, kc, "p") as p:
        row = b.add(base, b.mul(b.add(pc, p), f["b_rs"]))
        at = b.add(panel, b.mul(p, i64(width)))
        for t, col in enumerate(cols):
            v = convert(b, k.load(ptr, src, b.add(row, col)), src, dtype)
            v = b.select(b.icmp_signed("<", i64(t), valid), v, zero)
            k.store(v, dest, dtype, b.add(at, i64(t)))
