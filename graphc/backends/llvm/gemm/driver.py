"""The driver: one function per module and variant that walks a thread's share of the
blocks, packs operands and calls the micro-kernel on every tile."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.arith import smin
from graphc.backends.llvm.codegen.irtypes import I1, I8, I32, I64, const, i64
from graphc.backends.llvm.codegen.kernel import Kernel
from graphc.backends.llvm.gemm.blocking import nr
from graphc.backends.llvm.gemm.descriptor import FIELDS
from graphc.backends.llvm.gemm.micro import InPlaceA, micro_kernel, tiles
from graphc.backends.llvm.gemm.operands import DIGITS
from graphc.backends.llvm.gemm.pack_a import pack_a
from graphc.backends.llvm.gemm.pack_b import pack_strided_b
from graphc.backends.llvm.gemm.patches import pack_patches
from graphc.backends.llvm.gemm.split import Shape, groups

# A blocks used by at most this many column panels are read in place, not packed: rows
# whose depths are contiguous, other linear layouts. A transposed A in place (its own
# micro-kernel, micro._micro's unit "row") took 7% fewer instructions than packed on
# attention's q^T@g (64 columns); it had been limited to 2 panels.
IN_PLACE_PANELS = (4, 4)


def gemm_driver(mc, dtype: np.dtype, a_dtype: np.dtype, b_dtype: np.dtype, b_kind: str,
                gathers: bool) -> ir.Function:
    """gc_gemm_<variant>(desc, a, b, c, scratch, tid, nthreads, step): one per module and
    variant."""
    name = f"gc_gemm_{dtype.name}_{a_dtype.name}_{b_kind}_{b_dtype.name}" + \
        ("_gather" if gathers else "")
    existing = mc.module.globals.get(name)
    if existing is not None:
        return existing
    k = Kernel(mc, name, 5)
    desc, a_ptr, b_ptr, c_ptr, scratch = k.buffers
    b = k.b
    f = {}
    for key, (at, count) in FIELDS.items():
        values = [b.load(b.gep(desc, [i64(at + j)], source_etype=I64), typ=I64)
                  for j in range(count)]
        f[key] = values if count > 1 else values[0]
    slot = b.gep(scratch, [b.mul(k.tid, f["slot"])], source_etype=I8)
    part = {key: b.gep(slot, [f[key]], source_etype=I8)
            for key in ("b_pack", "tile", "a_cols", "b_rows", "b_cols")}
    a_pack = slot
    shape = Shape(f["items"], f["m_blocks"], f["n_blocks"], f["mc"], f["nc"], f["m"], f["n"])
    micro = micro_kernel(mc, dtype)
    zero_k = b.icmp_signed("==", f["k"], i64(0))
    with groups(k, shape) as group:
        index = _decompose(b, group.flat_batch, f["batch"])
        a_base = _dot(b, index, f["a_batch"])
        b_base = _dot(b, index, f["b_batch"])
        c_base = b.mul(group.flat_batch, f["c_batch"])
        jc, nc = group.jc, group.nc
        with k.when(zero_k):
            row0, row1 = group.rows(b)
            _zero_block(k, c_ptr, dtype, f["ldc"], c_base, row0, row1, jc, nc)
        if b_kind == "patches":
            _table(k, f["b_col_map"], 3, jc, nc, part["b_cols"], I32, f["nc"])
        blocks = b.sdiv(b.add(f["k"], b.sub(f["kc"], i64(1))), f["kc"])
        with k.loop(0, blocks, "pc") as pcb:
            pc = b.mul(pcb, f["kc"])
            kc = smin(b, f["kc"], b.sub(f["k"], pc))
            accumulate = b.icmp_signed(">", pcb, i64(0))
            if b_kind == "patches":
                _table(k, f["b_row_map"], 3, pc, kc, part["b_rows"], I64, f["kc"])
                pack_patches(k, f, b_ptr, b_dtype, dtype, b_base, jc, nc, kc,
                              part["b_pack"], part["b_rows"], part["b_cols"], gathers)
            else:
                pack_strided_b(k, f, b_ptr, b_dtype, dtype, b_base, jc, nc, pc, kc,
                                part["b_pack"])
            # An A block used by few column panels is not worth packing: full row panels
            # of a linear A of the compute dtype are read in place (IN_PLACE_PANELS).
            in_place = None
            if a_dtype == dtype:
                panels = b.select(b.icmp_signed("==", f["a_cs"], i64(1)),
                                  i64(IN_PLACE_PANELS[0]), i64(IN_PLACE_PANELS[1]))
                when = b.and_(b.icmp_signed("!=", f["a_cs"], i64(0)),
                              b.icmp_signed("<=", nc, b.mul(panels, i64(nr(dtype)))))
                in_place = InPlaceA(when, None, f["a_rs"], f["a_cs"])
            # A's column table, for packing it (an A read in place does without).
            with k.when(b.not_(in_place.when) if in_place else ir.Constant(I1, 1)):
                _table(k, f["a_map"], 1, pc, kc, part["a_cols"], I64, f["kc"])
            with k.loop(group.lo, group.hi, "ic") as icb:
                ic = b.mul(icb, f["mc"])
                m_here = smin(b, f["mc"], b.sub(f["m"], ic))
                if in_place is None:
                    pack_a(k, f, a_ptr, a_dtype, dtype, a_base, ic, m_here, kc, a_pack,
                            part["a_cols"])
                else:  # a last partial panel is read in place too (micro._edge_rows)
                    at = b.add(a_base, b.add(b.mul(ic, f["a_rs"]), b.mul(pc, f["a_cs"])))
                    in_place.rows = k.gep(a_ptr, a_dtype, at)
                    with k.when(b.not_(in_place.when)):
                        pack_a(k, f, a_ptr, a_dtype, dtype, a_base, ic, m_here, kc, a_pack,
                                part["a_cols"])
                tiles(k, f["ldc"], c_ptr, micro, a_pack, part["b_pack"], part["tile"],
                       c_base, ic, m_here, jc, nc, kc, accumulate, dtype, in_place)
    k.finish()
    return k.function


def _decompose(b, flat, dims: list) -> list:
    """The multi-index of a flat index over run-time dims (row-major)."""
    index = []
    for d in reversed(dims[1:]):
        index.append(b.urem(flat, d))
        flat = b.udiv(flat, d)
    index.append(flat)
    return index[::-1]


def _dot(b, index, strides):
    total = i64(0)
    for i, s in zip(index, strides):
        total = b.add(total, b.mul(i, s))
    return total


def _table(k: Kernel, fields: list, terms: int, start, count, dest, typ: ir.Type,
           stride) -> None:
    """dest[t * stride + x] = term t of an Affine (fields as Affine.fields) at start + x
    for x in [0, count): digits are carried from one index to the next, so only the
    first index is divided."""
    b = k.b
    dim1, dim2 = fields[0], fields[1]
    coeffs = [fields[2 + d * terms:2 + (d + 1) * terms] for d in range(DIGITS)]
    base = fields[2 + DIGITS * terms:]
    slots = [k.alloca(I64) for _ in range(DIGITS)]
    low = b.urem(start, dim2)
    rest = b.udiv(start, dim2)
    for slot, value in zip(slots, (b.udiv(rest, dim1), b.urem(rest, dim1), low)):
        b.store(value, slot)
    with k.loop(0, count, "tab") as x:
        digits = [b.load(s, typ=I64) for s in slots]
        for t in range(terms):
            value = base[t]
            for d in range(DIGITS):
                value = b.add(value, b.mul(digits[d], coeffs[d][t]))
            if typ != I64:
                value = b.trunc(value, typ)
            b.store(value, b.gep(dest, [b.add(b.mul(i64(t), stride), x)], source_etype=typ))
        d2 = b.add(digits[2], i64(1))
        carry2 = b.icmp_signed("==", d2, dim2)
        d1 = b.add(digits[1], b.zext(carry2, I64))
        carry1 = b.icmp_signed("==", d1, dim1)
        b.store(b.select(carry2, i64(0), d2), slots[2])
        b.store(b.select(carry1, i64(0), d1), slots[1])
        b.store(b.add(digits[0], b.zext(carry1, I64)), slots[0])


def _zero_block(k, c, dtype, ldc, c_base, row0, row1, jc, nc) -> None:
    b = k.b
    zero = const(dtype, 0)
    with k.loop(row0, row1, "zr") as r:
        at = b.add(c_base, b.add(b.mul(r, ldc), jc))
        with k.loop(0, nc, "zc") as col:
            k.store(zero, c, dtype, b.add(at, col))
