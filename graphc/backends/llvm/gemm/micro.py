"""The micro-kernel (an MR x NR tile of C in registers over packed panels) and the
loop over a block's tiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.arith import smin
from graphc.backends.llvm.codegen.irtypes import I1, I32, I64, PTR, VOID, i64, llvm_type
from graphc.backends.llvm.codegen.vector import fma_of, lanes, vector_bytes
from graphc.backends.llvm.gemm.blocking import TILE_VECTORS, k_unroll, mr, nr


@dataclass
class InPlaceA:
    """Full row panels of A read where they lie (by gc_micro_rows) when `when` holds:
    row r of the block starts at rows + r * row_stride, depths step by depth_stride."""

    when: ir.Value
    rows: ir.Value
    row_stride: ir.Value
    depth_stride: ir.Value


def tiles(k, ldc, c_ptr, micro, a_pack, b_pack, tile, c_base, ic, mc, jc, nc, kc, accumulate,
          dtype, in_place: InPlaceA | None = None) -> None:
    """Every MR x NR tile of the C block [ic, ic+mc) x [jc, jc+nc), a row panel at a
    time: its A panel (MR x kc) stays in L1 while the block's packed B panels stream past
    it, and its C tiles are visited along C's rows. A column panel at a time (BLIS's
    order: a B panel in L1, the A block streaming from L2) measured 2-8% slower in median
    at 512-2048^3 on Zen 3, and no faster on the model steps' shapes."""
    b = k.b
    width = nr(dtype)
    n_cols = b.sdiv(b.add(nc, i64(width - 1)), i64(width))
    with k.loop(0, b.sdiv(b.add(mc, i64(mr() - 1)), i64(mr())), "ir") as ir_, \
            k.loop(0, n_cols, "jr") as jr:
        row = b.mul(ir_, i64(mr()))
        rows = smin(b, i64(mr()), b.sub(mc, row))
        ap = k.gep(a_pack, dtype, b.mul(row, kc))
        col = b.mul(jr, i64(width))
        cols = smin(b, i64(width), b.sub(nc, col))
        bp = k.gep(b_pack, dtype, b.mul(col, kc))
        at = b.add(c_base, b.add(b.mul(b.add(ic, row), ldc), b.add(jc, col)))
        full_cols = b.icmp_signed("==", cols, i64(width))

        def product(c, ldc, accumulate):
            """The full-height tile, its A panel packed or where it lies."""
            if in_place is None:
                b.call(micro, [ap, bp, c, ldc, kc, accumulate])
                return
            with b.if_else(in_place.when) as (where_it_lies, packed):
                with where_it_lies:
                    a = k.gep(in_place.rows, dtype, b.mul(row, in_place.row_stride))
                    args = [a, in_place.row_stride, in_place.depth_stride, bp, c, ldc, kc,
                            accumulate]
                    unit_depth = b.icmp_signed("==", in_place.depth_stride, i64(1))
                    unit_row = b.icmp_signed("==", in_place.row_stride, i64(1))
                    with b.if_else(unit_depth) as (rows_of_a, other):
                        with rows_of_a:
                            b.call(_micro(k.mc, dtype, in_place=True, unit="depth"), args)
                        with other, b.if_else(unit_row) as (columns_of_a, strided):
                            with columns_of_a:
                                b.call(_micro(k.mc, dtype, in_place=True, unit="row"), args)
                            with strided:
                                b.call(_micro(k.mc, dtype, in_place=True), args)
                with packed:
                    b.call(micro, [ap, bp, c, ldc, kc, accumulate])

        with b.if_else(b.icmp_signed("==", rows, i64(mr()))) as (whole_rows, few_rows):
            with whole_rows:
                with b.if_else(full_cols) as (whole, partial):
                    with whole:
                        product(k.gep(c_ptr, dtype, at), ldc, accumulate)
                    with partial:
                        product(tile, i64(width), ir.Constant(I1, 0))
                        _add_tile(k, ldc, c_ptr, tile, at, rows, cols, accumulate, dtype)
            with few_rows:
                a, a_rs, a_cs = ap, i64(1), i64(mr())
                if in_place is not None:
                    here = k.gep(in_place.rows, dtype, b.mul(row, in_place.row_stride))
                    a = b.select(in_place.when, here, ap)
                    a_rs = b.select(in_place.when, in_place.row_stride, a_rs)
                    a_cs = b.select(in_place.when, in_place.depth_stride, a_cs)
                with b.if_else(full_cols) as (whole, partial):
                    with whole:
                        _edge_rows(k, dtype, rows, (a, a_rs, a_cs), bp,
                                   k.gep(c_ptr, dtype, at), ldc, kc, accumulate)
                    with partial:
                        _edge_rows(k, dtype, rows, (a, a_rs, a_cs), bp, tile, i64(width), kc,
                                   ir.Constant(I1, 0))
                        _add_tile(k, ldc, c_ptr, tile, at, rows, cols, accumulate, dtype)


def _edge_rows(k, dtype, rows, a, bp, c, ldc, kc, accumulate) -> None:
    """A tile of fewer than MR rows (the last panel of an M that MR does not divide: 64
    rows are 10 panels of 6 and one of 4) by the kernel of that many rows, A (pointer,
    row stride, depth stride) packed or where it lies; each element's sum in the same
    order as the full tile's. As a full tile, it cost the missing rows' FMAs, a scalar
    pass over C and (A in place) packing the panel."""
    b = k.b
    done = b.append_basic_block("edge.done")
    switch = b.switch(rows, done)
    for r in range(1, mr()):
        block = b.append_basic_block(f"edge{r}")
        switch.add_case(ir.Constant(I64, r), block)
        b.position_at_end(block)
        b.call(_micro(k.mc, dtype, in_place=True, rows=r), [*a, bp, c, ldc, kc, accumulate])
        b.branch(done)
    b.position_at_end(done)


def _add_tile(k, ldc, c_ptr, tile, at, rows, cols, accumulate, dtype) -> None:
    """C[at + r * ldc + c] (+)= tile[r, c] for the valid part of a partial tile."""
    b = k.b
    width = nr(dtype)
    with k.loop(0, rows, "tr") as r:
        with k.loop(0, cols, "tc") as c:
            v = k.load(tile, dtype, b.add(b.mul(r, i64(width)), c))
            dst = b.add(at, b.add(b.mul(r, ldc), c))
            old = k.load(c_ptr, dtype, dst)
            k.store(b.select(accumulate, b.fadd(old, v), v), c_ptr, dtype, dst)


def micro_kernel(mc, dtype: np.dtype) -> ir.Function:
    """gc_micro_<type>(a, b, c, ldc, kc, accumulate): the MR x NR tile at c (rows ldc
    elements apart) is set to (or, if accumulate, incremented by) the product of the
    packed panels a (kc x MR) and b (kc x NR); kc >= 1. One per module and dtype."""
    return _micro(mc, dtype, in_place=False)


def _micro(mc, dtype: np.dtype, in_place: bool, rows: int | None = None,
           unit: str | None = None) -> ir.Function:
    """The packed micro-kernel, or (in_place) gc_micro_rows_<type>(a, a_rs, a_cs, b, c,
    ldc, kc, accumulate), which reads A's element (i, p) at a[i * a_rs + p * a_cs] where
    it lies instead of from a packed panel; with `rows` < MR (in place only), the kernel
    of a tile of that many rows (gc_micro_rows<rows>_<type>). unit "depth" or "row": the
    in-place kernel for a_cs = 1 (rows of A contiguous) or a_rs = 1 (a transposed A), that
    argument ignored: with both strides run-time values, LLVM chained the six rows'
    addresses (an add per broadcast, 2.2 instructions per FMA against the packed
    kernel's 1.75)."""
    t = llvm_type(dtype)
    rows = mr() if rows is None else rows
    edge = "" if rows == mr() else str(rows)
    name = f"gc_micro_rows{edge}{'_' + unit if unit else ''}_{t}" if in_place else \
        f"gc_micro_{t}"
    existing = mc.module.globals.get(name)
    if existing is not None:
        return existing
    n_lanes = lanes(dtype)
    vec = ir.VectorType(t, n_lanes)
    strides = [I64, I64] if in_place else []
    fn = ir.Function(mc.module, ir.FunctionType(VOID, [PTR, *strides, PTR, PTR, I64, I64, I1]),
                     name=name)
    fn.linkage = "internal"
    if in_place:
        a, a_rs, a_cs, bp, c, ldc, kc, accumulate = fn.args
        a_cs = i64(1) if unit == "depth" else a_cs
        a_rs = i64(1) if unit == "row" else a_rs
    else:
        (a, bp, c, ldc, kc, accumulate), a_rs, a_cs = fn.args, i64(1), i64(mr())
    for arg in (a, bp, c):
        arg.add_attribute("noalias")
    fma = fma_of(mc, vec)
    entry, body, tail, step, done = (fn.append_basic_block(n) for n in (
        "entry", "unrolled", "tail", "step", "done"))
    b = ir.IRBuilder(entry)
    # The C tile is read or written only after the k loop: fetch its lines meanwhile.
    prefetch = mc.function("llvm.prefetch.p0", VOID, [PTR, I32, I32, I32])
    for i in range(rows):
        for v in range(TILE_VECTORS):
            q = b.gep(c, [b.add(b.mul(i64(i), ldc), i64(v * n_lanes))], source_etype=t)
            b.call(prefetch, [q, ir.Constant(I32, 1), ir.Constant(I32, 3), ir.Constant(I32, 1)])
    zero = ir.Constant(vec, [0.0] * n_lanes)
    zeros = [[zero] * TILE_VECTORS for _ in range(rows)]
    unroll = k_unroll()
    unrolled_depth = b.and_(kc, i64(-unroll))
    b.cbranch(b.icmp_signed(">", unrolled_depth, i64(0)), body, tail)

    def k_step(p, accs):
        """accs + A's column p (broadcast) times B's row p: one FMA per accumulator."""
        b_row = b.mul(p, i64(n_lanes * TILE_VECTORS))
        bs = [b.load(b.gep(bp, [b.add(b_row, i64(v * n_lanes))], source_etype=t), typ=vec,
                     align=vector_bytes()) for v in range(TILE_VECTORS)]
        a_depth = b.mul(p, a_cs)
        splat_mask = ir.Constant(ir.VectorType(I32, n_lanes), [0] * n_lanes)
        new = []
        for i in range(rows):
            at = b.add(a_depth, b.mul(i64(i), a_rs))
            scalar = b.load(b.gep(a, [at], source_etype=t), typ=t)
            one = b.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(I32, 0))
            splat = b.shuffle_vector(one, ir.Constant(vec, ir.Undefined), splat_mask)
            new.append([b.call(fma, [splat, bs[v], accs[i][v]]) for v in range(TILE_VECTORS)])
        return new

    # The unrolled loop: `unroll` depths a trip (the same order of sums as one a trip).
    b.position_at_end(body)
    p = b.phi(I64, "p")
    p.add_incoming(i64(0), entry)
    accs = [[b.phi(vec) for _ in range(TILE_VECTORS)] for _ in range(rows)]
    for row in accs:
        for acc in row:
            acc.add_incoming(zero, entry)
    new = accs
    for u in range(unroll):
        new = k_step(b.add(p, i64(u)), new)
    p_next = b.add(p, i64(unroll))
    p.add_incoming(p_next, body)
    _close(accs, new, body)
    b.cbranch(b.icmp_signed("<", p_next, unrolled_depth), body, tail)
    # The remaining depths (fewer than `unroll`), one a trip.
    b.position_at_end(tail)
    p_tail = b.phi(I64, "p_tail")
    p_tail.add_incoming(i64(0), entry)
    p_tail.add_incoming(p_next, body)
    accs_tail = _merge(b, vec, [(zeros, entry), (new, body)])
    b.cbranch(b.icmp_signed("<", p_tail, kc), step, done)
    b.position_at_end(step)
    p = b.phi(I64, "p_step")
    p.add_incoming(p_tail, tail)
    accs = _merge(b, vec, [(accs_tail, tail)])
    new_step = k_step(p, accs)
    p_next = b.add(p, i64(1))
    p.add_incoming(p_next, step)
    _close(accs, new_step, step)
    b.cbranch(b.icmp_signed("<", p_next, kc), step, done)
    b.position_at_end(done)
    new = _merge(b, vec, [(accs_tail, tail), (new_step, step)])
    # One branch on `accumulate` for the whole tile (a select per vector became a branch
    # per vector).
    with b.if_else(accumulate) as (add, store):
        for adding in (add, store):
            with adding:
                for i in range(rows):
                    row = b.mul(i64(i), ldc)
                    for v in range(TILE_VECTORS):
                        q = b.gep(c, [b.add(row, i64(v * n_lanes))], source_etype=t)
                        total = new[i][v]
                        if adding is add:
                            old = b.load(q, typ=vec, align=np.dtype(dtype).itemsize)
                            total = b.fadd(old, total)
                        b.store(total, q, align=np.dtype(dtype).itemsize)
    b.ret_void()
    # Called, not inlined into the driver: its registers are then all the tile's (inlined,
    # the driver's values spilled around the C update; ~2% slower at 1024^3).
    fn.attributes.add("noinline")
    return fn


def _merge(b, vec, incoming) -> list:
    """Phis of the accumulators over (values, block) pairs."""
    out = []
    for i in range(len(incoming[0][0])):
        row = []
        for v in range(len(incoming[0][0][i])):
            phi = b.phi(vec)
            for values, block in incoming:
                phi.add_incoming(values[i][v], block)
            row.append(phi)
        out.append(row)
    return out


def _close(phis, values, block) -> None:
    """The loop's back edge from `block` into the accumulator phis."""
    for row, new_row in zip(phis, values):
        for phi, value in zip(row, new_row):
            phi.add_incoming(value, block)
