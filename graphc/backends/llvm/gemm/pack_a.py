"""Packing A blocks into panels of MR rows."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.arith import smin
from graphc.backends.llvm.codegen.irtypes import I1, const, convert, i64, llvm_type
from graphc.backends.llvm.codegen.vector import lanes, transpose
from graphc.backends.llvm.gemm.blocking import mr


def pack_a(k, f, ptr, src, dtype, base, start, count, kc, dest, cols) -> None:
    """Pack rows [start, start+count) of A over the depth block (column offsets in the
    `cols` table) into panels of MR: dest[q * MR * kc + p * MR + t]. Rows past M pack
    zeros. Full panels of the compute dtype are read with vectors: one load per depth
    when the panel's rows are adjacent (a transposed A), MR x MR blocks transposed with
    shuffles when its columns are; anything else element by element."""
    b = k.b
    with k.loop(0, b.sdiv(b.add(count, i64(mr() - 1)), i64(mr())), "panel") as q:
        first = b.add(start, b.mul(q, i64(mr())))
        panel = b.mul(q, b.mul(kc, i64(mr())))
        valid = b.sub(f["m"], first)
        full = b.icmp_signed(">=", valid, i64(mr()))
        row_base = b.add(base, b.mul(first, f["a_rs"]))
        adjacent_rows = b.and_(full, b.icmp_signed("==", f["a_rs"], i64(1)))
        adjacent_cols = b.and_(full, b.icmp_signed("==", f["a_cs"], i64(1)))
        if src != dtype:  # converting operands are packed element by element
            adjacent_rows = adjacent_cols = ir.Constant(I1, 0)
        vec = ir.VectorType(llvm_type(dtype), mr())
        with b.if_else(adjacent_rows) as (by_depth, other):
            with by_depth:
                with k.loop(0, kc, "p") as p:
                    at = b.add(row_base, k.load(cols, np.dtype("int64"), p))
                    values = b.load(k.gep(ptr, src, at), typ=vec, align=src.itemsize)
                    b.store(values, k.gep(dest, dtype, b.add(panel, b.mul(p, i64(mr())))),
                            align=_panel_align(src))
            with other:
                with b.if_else(adjacent_cols) as (by_blocks, by_elements):
                    with by_blocks:
                        depth = _transposed_blocks(k, f, ptr, src, dtype, row_base, kc, dest,
                                                   panel, cols)
                        _pack_a_elements(k, f, ptr, src, dtype, base, first, valid, depth,
                                         kc, dest, panel, cols, full)
                    with by_elements:
                        _pack_a_elements(k, f, ptr, src, dtype, base, first, valid, i64(0),
                                         kc, dest, panel, cols, full)


def _transposed_blocks(k, f, ptr, src, dtype, row_base, kc, dest, panel, cols) -> ir.Value:
    """The depths of a full panel whose columns are adjacent, in transposed blocks; returns
    the depth where they end (the rest goes element by element). MR x MR blocks where MR
    is a power of two (shuffle stages); else, with MR < lanes (6 rows of 8 float32 on
    AVX2), blocks of `lanes` depths: the MR rows padded to a square of lanes, transposed
    in log2(lanes) shuffle stages, each depth stored as a whole vector whose lanes past
    MR the next depth's store overwrites (the last writes up to lanes - MR elements past
    the block: `Blocking.layout` leaves room). 6 x 6 blocks went lane by lane (extracts
    and inserts): packing A for a 1024^3 GEMM took ~0.4 ms more."""
    b = k.b
    padded = mr() & (mr() - 1) and mr() < lanes(dtype)
    size = lanes(dtype) if padded else mr()
    vec = ir.VectorType(llvm_type(dtype), size)
    blocks = b.sdiv(kc, i64(size))
    with k.loop(0, blocks, "pblock") as block:
        p = b.mul(block, i64(size))
        at = b.add(row_base, k.load(cols, np.dtype("int64"), p))
        rows = [b.load(k.gep(ptr, src, b.add(at, b.mul(i64(t), f["a_rs"]))), typ=vec,
                       align=src.itemsize) for t in range(mr())]
        rows += [ir.Constant(vec, ir.Undefined)] * (size - mr())
        for d, values in enumerate(transpose(b, rows)):
            slot = b.add(panel, b.mul(b.add(p, i64(d)), i64(mr())))
            b.store(values, k.gep(dest, dtype, slot), align=_panel_align(src))
    return b.mul(blocks, i64(size))


def _pack_a_elements(k, f, ptr, src, dtype, base, first, valid, p0, kc, dest, panel, cols,
                     full) -> None:
    """Depths [p0, kc) of one A panel, element by element (rows past M as zeros)."""
    b = k.b
    zero = const(dtype, 0)
    with b.if_else(full) as (whole, partial):
        for guarded in (whole, partial):
            with guarded:
                edge = guarded is partial
                idx = [b.add(first, i64(t)) for t in range(mr())]
                if edge:
                    last = b.sub(f["m"], i64(1))
                    idx = [smin(b, x, last) for x in idx]
                rows = [b.add(base, b.mul(x, f["a_rs"])) for x in idx]
                with k.loop(p0, kc, "p") as p:
                    col = k.load(cols, np.dtype("int64"), p)
                    at = b.add(panel, b.mul(p, i64(mr())))
                    for t, row in enumerate(rows):
                        v = convert(b, k.load(ptr, src, b.add(row, col)), src, dtype)
                        if edge:
                            v = b.select(b.icmp_signed("<", i64(t), valid), v, zero)
                        k.store(v, dest, dtype, b.add(at, i64(t)))


def _panel_align(src: np.dtype) -> int:
    """The alignment of an MR-element row of a panel: the largest power of two dividing
    its bytes (MR = 6 rows of float32 are 24 bytes apart: 8-byte aligned)."""
    nbytes = src.itemsize * mr()
    return nbytes & -nbytes
