"""Packing an image-patch B (im2col without the copy) into panels of NR columns:
contiguous masked loads along image rows, transposed runs, gathers, or elements."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import (
    I1,
    I32,
    I64,
    PTR,
    VOID,
    const,
    convert,
    i64,
    llvm_type,
)
from graphc.backends.llvm.codegen.vector import (
    gather_of,
    lanes,
    masked_load_of,
    transpose,
    vector_bytes,
)
from graphc.backends.llvm.gemm.blocking import nr


def pack_patches(k, f, ptr, src, dtype, base, start, count, kc, dest, rows, cols,
                 gathers: bool) -> None:
    """Pack columns [start, start+count) of an image-patch B into panels of NR (see
    pack_strided_b), from the row tables (3 x kc i64: offset, dy, dx of each depth) and
    column tables (3 x nc i32, from column `start`): masked gathers, or element by element
    when the operand is too big for 32-bit indices or needs a conversion."""
    b = k.b
    width = nr(dtype)
    height, image_width = f["height"], f["width"]
    with k.loop(0, b.sdiv(b.add(count, i64(width - 1)), i64(width)), "panel") as q:
        local = b.mul(q, i64(width))
        panel = b.mul(q, b.mul(kc, i64(width)))
        limit = b.sub(f["n"], b.add(start, local))
        if gathers:
            _gather_panel(k, f, ptr, src, base, local, limit, kc, dest, panel, rows, cols)
        else:
            _scalar_patch_panel(k, f, ptr, src, dtype, base, local, limit, kc, dest, panel,
                                rows, cols, height, image_width)


class _Vectors:
    """Vector helpers for packing a panel of NR columns of `src`."""

    def __init__(self, k, src: np.dtype, width: int):
        self.b, self.width = k.b, width
        self.ivec = ir.VectorType(I32, width)
        self.t = llvm_type(src)
        self.vec = ir.VectorType(self.t, width)
        self.mask = ir.VectorType(I1, width)
        self.lane = ir.Constant(self.ivec, list(range(width)))
        self.zero = ir.Constant(self.vec, [0.0] * width)
        self.load = masked_load_of(k.mc, self.vec)

    def splat(self, x):
        b = self.b
        one = b.insert_element(ir.Constant(self.ivec, ir.Undefined), b.trunc(x, I32),
                               ir.Constant(I32, 0))
        return b.shuffle_vector(one, ir.Constant(self.ivec, ir.Undefined),
                                ir.Constant(self.ivec, [0] * self.width))


def _gather_panel(k, f, ptr, src, base, local, limit, kc, dest, panel, rows, cols) -> None:
    """One NR-column panel of an image-patch B with vector reads: a masked contiguous load
    per depth when the panel's columns are consecutive pixels of one image row (stride 1,
    the panel within one output row); transposed blocks of masked loads when depths run
    along image rows (b_runs); masked gathers otherwise. All give the same values."""
    b = k.b
    width = nr(src)
    v = _Vectors(k, src, width)

    def column_terms(term):
        at = b.add(b.mul(i64(term), f["nc"]), local)
        return b.load(b.gep(cols, [at], source_etype=I32), typ=v.ivec, align=4)

    columns = [column_terms(term) for term in range(3)]
    offset, dy, dx = columns
    in_matrix = b.icmp_signed("<", v.lane, v.splat(limit))
    first = [b.sext(b.extract_element(c, ir.Constant(I32, 0)), I64) for c in columns]
    one_row = b.and_(b.icmp_signed("==", offset, v.splat(first[0])),
                     b.and_(b.icmp_signed("==", dy, v.splat(first[1])),
                            b.icmp_signed("==", dx, b.add(v.splat(first[2]), v.lane))))
    every = k.mc.function(f"llvm.vector.reduce.and.v{width}i1", I1, [v.mask])
    contiguous = b.call(every, [b.or_(one_row, b.not_(in_matrix))])
    runs = b.icmp_signed("!=", f["b_runs"], i64(0))
    with b.if_else(contiguous) as (row_panel, general):
        with row_panel:
            with k.loop(0, kc, "p") as p:
                r_offset, r_dy, r_dx = _row_terms(k, f, rows, p)
                iy, ix = b.add(first[1], r_dy), b.add(first[2], r_dx)
                inside = b.and_(in_matrix, b.icmp_unsigned("<", b.add(v.splat(ix), v.lane),
                                                           v.splat(f["width"])))
                row_ok = b.icmp_unsigned("<", iy, f["height"])
                inside = b.select(row_ok, inside, ir.Constant(v.mask, [0] * width))
                at = b.add(b.add(base, b.add(r_offset, first[0])),
                           b.add(b.mul(iy, f["width"]), ix))
                at = b.select(row_ok, at, i64(0))  # see _run_packer
                values = b.call(v.load, [b.gep(ptr, [at], source_etype=v.t),
                                         ir.Constant(I32, src.itemsize), inside, v.zero])
                b.store(values, k.gep(dest, src, b.add(panel, b.mul(p, i64(width)))),
                        align=vector_bytes())
        with general:
            with b.if_else(runs) as (by_runs, by_gathers):
                with by_runs:
                    table = b.gep(cols, [local], source_etype=I32)
                    b.call(_run_packer(k.mc, src),
                           [ptr, dest, rows, table, base, limit, kc, panel, f["nc"], f["kc"],
                            f["height"], f["width"]])
                with by_gathers:
                    _gathers(k, f, v, ptr, src, base, kc, dest, panel, rows, columns,
                             in_matrix)


def _row_terms(k, f, rows, p) -> list:
    """(offset, dy, dx) of depth p from the row tables."""
    return [k.load(rows, np.dtype("int64"), k.b.add(k.b.mul(i64(term), f["kc"]), p))
            for term in range(3)]


def _gathers(k, f, v, ptr, src, base, kc, dest, panel, rows, columns, in_matrix) -> None:
    """Pack a panel with one masked gather of its NR columns per depth."""
    b = k.b
    offset, dy, dx = columns
    gather = gather_of(k.mc, v.vec)
    height, image_width = v.splat(f["height"]), v.splat(f["width"])
    with k.loop(0, kc, "p") as p:
        r_offset, r_dy, r_dx = _row_terms(k, f, rows, p)
        iy, ix = b.add(dy, v.splat(r_dy)), b.add(dx, v.splat(r_dx))
        inside = b.and_(in_matrix, b.and_(b.icmp_unsigned("<", iy, height),
                                          b.icmp_unsigned("<", ix, image_width)))
        at = b.add(b.add(offset, v.splat(b.add(base, r_offset))),
                   b.add(b.mul(iy, image_width), ix))
        pointers = b.gep(ptr, [at], source_etype=v.t)
        pointers.type = ir.VectorType(PTR, v.width)  # llvmlite types a vector GEP as ptr
        values = b.call(gather, [pointers, ir.Constant(I32, src.itemsize), inside, v.zero])
        b.store(values, k.gep(dest, src, b.add(panel, b.mul(p, i64(v.width)))),
                align=vector_bytes())


def _run_packer(mc, src: np.dtype) -> ir.Function:
    """gc_pack_runs_<type>(src, dest, rows, cols, base, limit, kc, panel, nc, kc_stride,
    height, width): pack a panel whose depths run along image rows. From each depth p, the
    run of up to L = lanes depths on one output row is read per column with one masked
    contiguous load, and each L x L block of columns is transposed with shuffles into L
    depth rows. Whole blocks are stored (rows past the run are rewritten by the next run;
    the scratch has room for those past the panel's end). A function of its own: inlined,
    its many live values slowed the driver's other loops twofold."""
    t = llvm_type(src)
    name = f"gc_pack_runs_{t}"
    existing = mc.module.globals.get(name)
    if existing is not None:
        return existing
    fn = ir.Function(mc.module, ir.FunctionType(VOID, [PTR] * 4 + [I64] * 8), name=name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    ptr, dest, rows, cols, base, limit, kc, panel, nc, kc_stride, height, image_width = fn.args
    for arg in (ptr, dest):
        arg.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    n_lanes = lanes(src)
    width = nr(src)
    ivec = ir.VectorType(I32, n_lanes)
    i64vec = ir.VectorType(I64, n_lanes)
    vec = ir.VectorType(t, n_lanes)
    mask = ir.VectorType(I1, n_lanes)
    lane = ir.Constant(ivec, list(range(n_lanes)))
    lane64 = ir.Constant(i64vec, list(range(n_lanes)))
    zero = ir.Constant(vec, [0.0] * n_lanes)
    none = ir.Constant(mask, [0] * n_lanes)
    load = masked_load_of(mc, vec)

    def splat(x, typ):
        one = b.insert_element(ir.Constant(typ, ir.Undefined), x, ir.Constant(I32, 0))
        return b.shuffle_vector(one, ir.Constant(typ, ir.Undefined),
                                ir.Constant(ivec, [0] * n_lanes))

    lowest = mc.function("llvm.cttz.i64", I64, [I64, I1])

    def counted(start, name):
        """A loop header: (index phi, body block, exit block); the caller closes it."""
        before = b.block
        head, body, done = (fn.append_basic_block(f"{name}.{part}")
                            for part in ("head", "body", "end"))
        b.branch(head)
        b.position_at_end(head)
        index = b.phi(I64, name)
        index.add_incoming(start, before)
        return index, head, body, done

    # Column blocks of L columns (a loop: unrolled, the code doubled for no gain).
    first, block_head, block_body, blocks_done = counted(i64(0), "block")
    b.cbranch(b.icmp_signed("<", first, i64(width)), block_body, blocks_done)
    b.position_at_end(block_body)
    terms = [[b.sext(b.load(b.gep(cols, [b.add(b.mul(i64(term), nc), b.add(first, i64(c)))],
                                  source_etype=I32), typ=I32), I64) for c in range(n_lanes)]
             for term in range(3)]
    valid = [b.icmp_signed("<", b.add(first, i64(c)), limit) for c in range(n_lanes)]
    p, run_head, run_body, runs_done = counted(i64(0), "run")
    b.cbranch(b.icmp_signed("<", p, kc), run_body, runs_done)
    b.position_at_end(run_body)
    # The run: depths p.. with the same offset and dy and consecutive dx, within kc.
    tables = [b.load(b.gep(rows, [b.add(b.mul(i64(term), kc_stride), p)], source_etype=I64),
                     typ=i64vec, align=8) for term in range(3)]
    r_offset, r_dy, r_dx = (b.extract_element(x, ir.Constant(I32, 0)) for x in tables)
    same = b.and_(b.and_(b.icmp_signed("==", tables[0], splat(r_offset, i64vec)),
                         b.icmp_signed("==", tables[1], splat(r_dy, i64vec))),
                  b.and_(b.icmp_signed("==", tables[2], b.add(splat(r_dx, i64vec), lane64)),
                         b.icmp_signed("<", lane64, splat(b.sub(kc, p), i64vec))))
    bits = b.zext(b.bitcast(same, ir.IntType(n_lanes)), I64)
    run = b.call(lowest, [b.xor(bits, i64(-1)), ir.Constant(I1, 0)])  # lane 0 always set
    in_run = b.icmp_signed("<", lane, splat(b.trunc(run, I32), ivec))
    loaded = []
    for c in range(n_lanes):
        iy = b.add(terms[1][c], r_dy)
        ix = b.add(terms[2][c], r_dx)
        inside = b.and_(in_run, b.icmp_unsigned(
            "<", b.add(splat(b.trunc(ix, I32), ivec), lane),
            splat(b.trunc(image_width, I32), ivec)))
        ok = b.and_(valid[c], b.icmp_unsigned("<", iy, height))
        at = b.add(b.add(base, b.add(r_offset, terms[0][c])),
                   b.add(b.mul(iy, image_width), ix))
        at = b.select(ok, at, i64(0))  # masked-off loads from wild addresses are slow
        loaded.append(b.call(load, [b.gep(ptr, [at], source_etype=t),
                                    ir.Constant(I32, src.itemsize),
                                    b.select(ok, inside, none), zero]))
    for depth, values in enumerate(transpose(b, loaded)):
        row = b.add(panel, b.mul(b.add(p, i64(depth)), i64(width)))
        slot = b.gep(dest, [b.add(row, first)], inbounds=True, source_etype=t)
        b.store(values, slot, align=vector_bytes())
    p.add_incoming(b.add(p, run), b.block)
    b.branch(run_head)
    b.position_at_end(runs_done)
    first.add_incoming(b.add(first, i64(n_lanes)), b.block)
    b.branch(block_head)
    b.position_at_end(blocks_done)
    b.ret_void()
    return fn


def _scalar_patch_panel(k, f, ptr, src, dtype, base, local, limit, kc, dest, panel, rows,
                        cols, height, image_width) -> None:
    b = k.b
    width = nr(dtype)
    zero = const(dtype, 0)
    with k.loop(0, kc, "p") as p:
        r_offset, r_dy, r_dx = (k.load(rows, np.dtype("int64"), b.add(b.mul(i64(term), f["kc"]), p))
                                for term in range(3))
        at_p = b.add(panel, b.mul(p, i64(width)))
        with k.loop(0, width, "t") as t:
            column = b.add(local, t)
            offset, dy, dx = (b.sext(b.load(b.gep(cols, [b.add(b.mul(i64(term), f["nc"]),
                                                                column)], source_etype=I32),
                                            typ=I32), I64) for term in range(3))
            iy, ix = b.add(r_dy, dy), b.add(r_dx, dx)
            inside = b.and_(b.icmp_signed("<", t, limit),
                            b.and_(b.icmp_unsigned("<", iy, height),
                                   b.icmp_unsigned("<", ix, image_width)))
            at = b.add(b.add(base, b.add(r_offset, offset)), b.add(b.mul(iy, image_width), ix))
            v = k.load(ptr, src, b.select(inside, at, i64(0)))
            v = b.select(inside, convert(b, v, src, dtype), zero)
            k.store(v, dest, dtype, b.add(at_p, t))
