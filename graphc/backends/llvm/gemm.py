"""A packed, register-blocked GEMM: C[batch] (M x N) = A[batch] (M x K) @ B[batch] (K x N)
for float32 and float64, the engine behind matmul and the three convolution ops.

A micro-kernel keeps an MR x NR tile of C in vector registers (SSA phis, explicit
`llvm.fma`) while it runs over packed panels: A in panels of MR rows, B in panels of NR
columns, both k-major, packed from their operands into per-thread scratch by `Reader`s,
which hide how an element is addressed (strided and transposed matrices, broadcast batch
dims, im2col patches of an image). Panels past the matrix edge are packed with zeros, and
partial tiles go through a small scratch tile. Each C element sums its K terms in KC
blocks in a fixed order, so results do not depend on which thread computes a block: the
threads split (batch, column block, row block) items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.irtypes import I1, I32, I64, PTR, VOID, const, convert, i64, llvm_type
from graphc.backends.llvm.kernel import Kernel, decompose

MR = 8  # rows of the register tile
VECTOR_BYTES = 64  # one zmm register
TILE_VECTORS = 2  # vectors per tile row: NR = 32 float32 or 16 float64
KC, MC, NC = 256, 128, 1024  # cache blocks: depth, rows, columns
MIN_ITEMS = 4  # split smaller problems into this many items where possible (threads)
SCRATCH_SLOTS = 8  # per-thread scratch regions; threads beyond them sit out a GEMM


def lanes(dtype: np.dtype) -> int:
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def nr(dtype: np.dtype) -> int:
    return lanes(dtype) * TILE_VECTORS


def supported(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def _up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


@dataclass(frozen=True)
class Blocking:
    """Cache blocks of one GEMM shape (rows mc, columns nc, depth kc), chosen from the
    shape alone: kc fixes every element's summation order; mc and nc only share out work."""

    mc: int
    nc: int
    kc: int

    @staticmethod
    def of(batch: int, m: int, n: int, k: int, dtype: np.dtype) -> Blocking:
        width = nr(dtype)
        mc, nc = min(MC, _up(m, MR)), min(NC, _up(n, width))
        while batch * -(-m // mc) * -(-n // nc) < MIN_ITEMS:
            if nc >= 2 * width and nc >= mc:
                nc = _up(nc // 2, width)
            elif mc >= 2 * MR:
                mc = _up(mc // 2, MR)
            else:
                break
        return Blocking(mc, nc, max(1, min(KC, k)))

    def scratch_bytes(self, dtype: np.dtype) -> int:
        """Per thread: the packed A block, the packed B panel and one C tile."""
        size = np.dtype(dtype).itemsize
        parts = (self.mc * self.kc, self.nc * self.kc, MR * nr(dtype))
        return sum(_up(p * size, VECTOR_BYTES) for p in parts)


def scratch_bytes(batch: int, m: int, n: int, k: int, dtype: np.dtype) -> int:
    """The scratch a GEMM of this shape needs, for every thread slot."""
    if m * n * batch == 0:
        return 0
    return SCRATCH_SLOTS * Blocking.of(batch, m, n, k, dtype).scratch_bytes(dtype)


class Reader:
    """How one GEMM operand's element (batch, row, col) is read, in parts: `batch` once
    per batch, `row` once per row and `col` once per column (packing hoists them out of
    its loops), and `value` combining a row and a column part (in the compute dtype)."""

    def batch(self, k: Kernel, index: list[ir.Value]):
        raise NotImplementedError

    def row(self, k: Kernel, base, r: ir.Value):
        raise NotImplementedError

    def col(self, k: Kernel, base, c: ir.Value):
        raise NotImplementedError

    def value(self, k: Kernel, row, col) -> ir.Value:
        raise NotImplementedError


class AddressReader(Reader):
    """Elements at ptr[batch part + row part + col part]: row(r) and col(c) give element
    offsets (functions of the IR index), batch_strides are per batch axis."""

    def __init__(self, ptr, dtype, compute, batch_strides, row, col):
        self.ptr, self.dtype, self.compute = ptr, np.dtype(dtype), np.dtype(compute)
        self.batch_strides, self._row, self._col = list(batch_strides), row, col

    def batch(self, k, index):
        total = i64(0)
        for i, s in zip(index, self.batch_strides):
            if s:
                total = k.b.add(total, k.b.mul(i, i64(s)))
        return total

    def row(self, k, base, r):
        return k.b.add(base, self._row(k.b, r))

    def col(self, k, base, c):
        return self._col(k.b, c)

    def value(self, k, row, col):
        v = k.load(self.ptr, self.dtype, k.b.add(row, col))
        return convert(k.b, v, self.dtype, self.compute)


def strided(ptr, dtype, compute, batch_strides, row_stride: int, col_stride: int) -> Reader:
    """A (possibly transposed) matrix with constant strides."""
    return AddressReader(ptr, dtype, compute, batch_strides,
                         lambda b, r: _scaled(b, r, row_stride),
                         lambda b, c: _scaled(b, c, col_stride))


def _scaled(b, x, s: int):
    return x if s == 1 else b.mul(x, i64(s))


@dataclass(frozen=True)
class Affine:
    """Three integers (offset, dy, dx) as linear functions of an index's mixed-radix
    digits over `dims` (the first digit unbounded): digit d adds digit * coeffs[d][t] to
    term t, on top of `base`."""

    dims: tuple[int, ...]
    coeffs: tuple[tuple[int, int, int], ...]
    base: tuple[int, int, int] = (0, 0, 0)

    def evaluate(self, b, x, constant) -> list:
        terms = [constant(c) for c in self.base]
        rest = x
        for d in reversed(range(len(self.dims))):
            if d:
                digit = b.urem(rest, constant(self.dims[d]))
                rest = b.udiv(rest, constant(self.dims[d]))
            else:
                digit = rest
            for t, c in enumerate(self.coeffs[d]):
                if c:
                    terms[t] = b.add(terms[t], digit if c == 1 else b.mul(digit, constant(c)))
        return terms


class PatchReader(Reader):
    """Elements of zero-padded images: ptr[offset + iy * width + ix] where a row's and a
    column's Affine give (offset, iy, ix) terms that add up, and anything outside
    [0, height) x [0, width) reads as zero (im2col without the copy). Column panels are
    packed with masked vector gathers."""

    def __init__(self, operand, compute, batch_stride: int, height: int, width: int,
                 rows: Affine, cols: Affine):
        self.ptr, self.dtype, self.compute = operand.ptr, np.dtype(operand.dtype), compute
        self.batch_stride, self.height, self.width = batch_stride, height, width
        self.rows, self.cols = rows, cols
        # Gathers take 32-bit indices and read the operand's own dtype.
        self.gathers = operand.size < 2 ** 31 and self.dtype == np.dtype(compute)

    def batch(self, k, index):
        return k.b.mul(index[0], i64(self.batch_stride)) if index else i64(0)

    def row(self, k, base, r):
        offset, dy, dx = self.rows.evaluate(k.b, r, i64)
        return k.b.add(base, offset), dy, dx

    def col(self, k, base, c):
        return self.cols.evaluate(k.b, c, i64)

    def value(self, k, row, col):
        b = k.b
        iy, ix = b.add(row[1], col[1]), b.add(row[2], col[2])
        inside = b.and_(b.icmp_unsigned("<", iy, i64(self.height)),
                        b.icmp_unsigned("<", ix, i64(self.width)))
        at = b.add(b.add(row[0], col[0]), b.add(b.mul(iy, i64(self.width)), ix))
        v = k.load(self.ptr, self.dtype, b.select(inside, at, i64(0)))
        return b.select(inside, convert(b, v, self.dtype, self.compute), const(self.compute, 0))

    def pack_columns(self, k, base, first, limit: int, width: int, pc, kc, dest, panel):
        """dest[panel + p * width + t] = element (pc + p, first + t), zero past `limit`."""
        b = k.b
        ivec = ir.VectorType(I32, width)

        def vconst(c):
            return ir.Constant(ivec, [int(c)] * width)

        def splat(x):
            one = b.insert_element(ir.Constant(ivec, ir.Undefined), b.trunc(x, I32),
                                   ir.Constant(I32, 0))
            return b.shuffle_vector(one, ir.Constant(ivec, ir.Undefined),
                                    ir.Constant(ivec, [0] * width))

        q = b.add(splat(first), ir.Constant(ivec, list(range(width))))
        in_matrix = b.icmp_signed("<", q, vconst(limit))
        offset, dy, dx = self.cols.evaluate(b, q, vconst)
        t = llvm_type(self.dtype)
        vec = ir.VectorType(t, width)
        mask_type = ir.VectorType(I1, width)
        gather = k.mc.function(f"llvm.masked.gather.v{width}{_suffix(t)}.v{width}p0", vec,
                               [ir.VectorType(PTR, width), I32, mask_type, vec])
        zero = ir.Constant(vec, [0.0] * width)
        with k.loop(0, kc, "p") as p:
            r_offset, r_dy, r_dx = self.rows.evaluate(b, b.add(pc, p), i64)
            iy, ix = b.add(dy, splat(r_dy)), b.add(dx, splat(r_dx))
            inside = b.and_(in_matrix, b.and_(b.icmp_unsigned("<", iy, vconst(self.height)),
                                              b.icmp_unsigned("<", ix, vconst(self.width))))
            at = b.add(b.add(offset, splat(b.add(base, r_offset))),
                       b.add(b.mul(iy, vconst(self.width)), ix))
            pointers = b.gep(self.ptr, [at], source_etype=t)
            pointers.type = ir.VectorType(PTR, width)  # llvmlite types a vector GEP as ptr
            values = b.call(gather, [pointers, ir.Constant(I32, self.dtype.itemsize), inside,
                                     zero])
            slot = k.gep(dest, self.dtype, b.add(panel, b.mul(p, i64(width))))
            b.store(values, slot, align=VECTOR_BYTES)


def _suffix(t: ir.Type) -> str:
    return "f32" if str(t) == "float" else "f64"


@dataclass
class Gemm:
    """One GEMM: shapes, operand readers, where C goes (contiguous rows of ldc elements,
    batch b at b * c_batch_stride), and an epilogue(batch index, r0, r1, c0, c1) run on
    each finished C block."""

    batch: tuple[int, ...]
    m: int
    n: int
    k: int
    dtype: np.dtype
    a: Reader
    b: Reader
    c: ir.Value
    ldc: int
    c_batch_stride: int
    epilogue: object = None


def emit(k: Kernel, g: Gemm, scratch: ir.Value) -> None:
    """The calling thread's share of the GEMM."""
    batch = int(np.prod(g.batch, dtype=np.int64))
    if batch * g.m * g.n == 0:
        return
    dtype = np.dtype(g.dtype)
    blocks = Blocking.of(batch, g.m, g.n, g.k, dtype)
    width, size = nr(dtype), dtype.itemsize
    m_blocks, n_blocks = -(-g.m // blocks.mc), -(-g.n // blocks.nc)
    b = k.b
    # Per-thread scratch; threads beyond the slots do no GEMM work.
    workers = b.select(b.icmp_signed("<", k.nthreads, i64(SCRATCH_SLOTS)), k.nthreads,
                       i64(SCRATCH_SLOTS))
    slot = b.gep(scratch, [b.mul(k.tid, i64(blocks.scratch_bytes(dtype)))],
                 source_etype=ir.IntType(8))
    a_pack = slot
    b_pack = b.gep(slot, [i64(_up(blocks.mc * blocks.kc * size, VECTOR_BYTES))],
                   source_etype=ir.IntType(8))
    tile = b.gep(b_pack, [i64(_up(blocks.nc * blocks.kc * size, VECTOR_BYTES))],
                 source_etype=ir.IntType(8))
    items = batch * n_blocks * m_blocks
    chunk = b.sdiv(b.add(i64(items), b.sub(workers, i64(1))), workers)
    active = b.icmp_signed("<", k.tid, workers)
    start = b.select(active, _smin(b, b.mul(k.tid, chunk), i64(items)), i64(items))
    stop = _smin(b, b.add(start, chunk), i64(items))
    micro = micro_kernel(k.mc, dtype)
    first = b.sdiv(start, i64(m_blocks))
    last = b.sdiv(b.add(stop, i64(m_blocks - 1)), i64(m_blocks))
    with k.loop(first, last, "group") as group:
        flat_batch = b.sdiv(group, i64(n_blocks))
        jc = b.mul(b.srem(group, i64(n_blocks)), i64(blocks.nc))
        nc = _smin(b, i64(blocks.nc), b.sub(i64(g.n), jc))
        index = decompose(b, flat_batch, list(g.batch)) if g.batch else []
        a_base, b_base = g.a.batch(k, index), g.b.batch(k, index)
        c_base = b.mul(flat_batch, i64(g.c_batch_stride))
        base_item = b.mul(group, i64(m_blocks))
        lo = b.sub(_smax(b, start, base_item), base_item)
        hi = b.sub(_smin(b, stop, b.add(base_item, i64(m_blocks))), base_item)
        row0 = b.mul(lo, i64(blocks.mc))
        row1 = _smin(b, b.mul(hi, i64(blocks.mc)), i64(g.m))
        if g.k == 0:
            _zero_block(k, g, c_base, row0, row1, jc, nc)
        with k.loop(0, -(-g.k // blocks.kc), "pc") as pcb:
            pc = b.mul(pcb, i64(blocks.kc))
            kc = _smin(b, i64(blocks.kc), b.sub(i64(g.k), pc))
            accumulate = b.icmp_signed(">", pcb, i64(0))
            _pack(k, g.b, b_base, jc, nc, g.n, pc, kc, width, b_pack, dtype, columns=True)
            with k.loop(lo, hi, "ic") as icb:
                ic = b.mul(icb, i64(blocks.mc))
                mc = _smin(b, i64(blocks.mc), b.sub(i64(g.m), ic))
                _pack(k, g.a, a_base, ic, mc, g.m, pc, kc, MR, a_pack, dtype, columns=False)
                _tiles(k, g, micro, a_pack, b_pack, tile, c_base, ic, mc, jc, nc, kc,
                       accumulate, dtype)
        if g.epilogue is not None:
            g.epilogue(index, row0, row1, jc, b.add(jc, nc))


def _smin(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _smax(b, x, y):
    return b.select(b.icmp_signed(">", x, y), x, y)


def _zero_block(k, g, c_base, row0, row1, jc, nc) -> None:
    b = k.b
    zero = const(g.dtype, 0)
    with k.loop(row0, row1, "zr") as r:
        at = b.add(c_base, b.add(b.mul(r, i64(g.ldc)), jc))
        with k.loop(0, nc, "zc") as c:
            k.store(zero, g.c, g.dtype, b.add(at, c))


def _pack(k, reader, base, start, count, limit, pc, kc, width, dest, dtype, columns) -> None:
    """Pack rows (A: columns=False) or columns (B) [start, start+count) of the operand
    over depth [pc, pc+kc) into panels of `width`: dest[q * width * kc + p * width + t].
    Indices past `limit` pack zeros."""
    b = k.b
    with k.loop(0, b.sdiv(b.add(count, i64(width - 1)), i64(width)), "panel") as q:
        first = b.add(start, b.mul(q, i64(width)))
        panel = b.mul(q, b.mul(kc, i64(width)))
        if columns and getattr(reader, "gathers", False):
            reader.pack_columns(k, base, first, limit, width, pc, kc, dest, panel)
        else:
            _pack_panel(k, reader, base, first, limit, pc, kc, width, dest, dtype, columns,
                        panel)


def _pack_panel(k, reader, base, first, limit, pc, kc, width, dest, dtype, columns,
                panel) -> None:
    """One panel element by element; a panel crossing `limit` is padded with zeros."""
    b = k.b
    zero = const(dtype, 0)
    valid = b.sub(i64(limit), first)
    full = b.icmp_signed(">=", valid, i64(width))
    with b.if_else(full) as (whole, partial):
        for guarded in (whole, partial):
            with guarded:
                edge = guarded is partial
                idx = [b.add(first, i64(t)) for t in range(width)]
                if edge:
                    idx = [_smin(b, x, i64(limit - 1)) for x in idx]
                parts = [(reader.col if columns else reader.row)(k, base, x) for x in idx]
                with k.loop(0, kc, "p") as p:
                    depth = b.add(pc, p)
                    other = (reader.row if columns else reader.col)(k, base, depth)
                    at = b.add(panel, b.mul(p, i64(width)))
                    for t, part in enumerate(parts):
                        v = reader.value(k, other, part) if columns else \
                            reader.value(k, part, other)
                        if edge:
                            v = b.select(b.icmp_signed("<", i64(t), valid), v, zero)
                        k.store(v, dest, dtype, b.add(at, i64(t)))


def _tiles(k, g, micro, a_pack, b_pack, tile, c_base, ic, mc, jc, nc, kc, accumulate,
           dtype) -> None:
    """Every MR x NR tile of the C block [ic, ic+mc) x [jc, jc+nc)."""
    b = k.b
    width = nr(dtype)
    with k.loop(0, b.sdiv(b.add(nc, i64(width - 1)), i64(width)), "jr") as jr:
        col = b.mul(jr, i64(width))
        cols = _smin(b, i64(width), b.sub(nc, col))
        bp = k.gep(b_pack, dtype, b.mul(col, kc))
        with k.loop(0, b.sdiv(b.add(mc, i64(MR - 1)), i64(MR)), "ir") as ir_:
            row = b.mul(ir_, i64(MR))
            rows = _smin(b, i64(MR), b.sub(mc, row))
            ap = k.gep(a_pack, dtype, b.mul(row, kc))
            at = b.add(c_base, b.add(b.mul(b.add(ic, row), i64(g.ldc)), b.add(jc, col)))
            full = b.and_(b.icmp_signed("==", rows, i64(MR)),
                          b.icmp_signed("==", cols, i64(width)))
            with b.if_else(full) as (whole, partial):
                with whole:
                    b.call(micro, [ap, bp, k.gep(g.c, dtype, at), i64(g.ldc), kc, accumulate])
                with partial:
                    b.call(micro, [ap, bp, tile, i64(width), kc, ir.Constant(I1, 0)])
                    _add_tile(k, g, tile, at, rows, cols, accumulate, dtype)


def _add_tile(k, g, tile, at, rows, cols, accumulate, dtype) -> None:
    """C[at + r * ldc + c] (+)= tile[r, c] for the valid part of a partial tile."""
    b = k.b
    width = nr(dtype)
    with k.loop(0, rows, "tr") as r:
        with k.loop(0, cols, "tc") as c:
            v = k.load(tile, dtype, b.add(b.mul(r, i64(width)), c))
            dst = b.add(at, b.add(b.mul(r, i64(g.ldc)), c))
            old = k.load(g.c, dtype, dst)
            k.store(b.select(accumulate, b.fadd(old, v), v), g.c, dtype, dst)


def micro_kernel(mc, dtype: np.dtype) -> ir.Function:
    """gc_micro_<type>(a, b, c, ldc, kc, accumulate): the MR x NR tile at c (rows ldc
    elements apart) is set to (or, if accumulate, incremented by) the product of the
    packed panels a (kc x MR) and b (kc x NR); kc >= 1. One per module and dtype."""
    t = llvm_type(dtype)
    name = f"gc_micro_{t}"
    existing = mc.module.globals.get(name)
    if existing is not None:
        return existing
    n_lanes = lanes(dtype)
    vec = ir.VectorType(t, n_lanes)
    fn = ir.Function(mc.module, ir.FunctionType(VOID, [PTR, PTR, PTR, I64, I64, I1]), name=name)
    fn.linkage = "internal"
    a, bp, c, ldc, kc, accumulate = fn.args
    for arg in (a, bp, c):
        arg.add_attribute("noalias")
    fma = mc.function(f"llvm.fma.v{n_lanes}{_suffix(t)}", vec, [vec] * 3)
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    b.branch(loop)
    b.position_at_end(loop)
    p = b.phi(I64, "p")
    p.add_incoming(i64(0), entry)
    zero = ir.Constant(vec, [0.0] * n_lanes)
    accs = [[b.phi(vec) for _ in range(TILE_VECTORS)] for _ in range(MR)]
    for row in accs:
        for acc in row:
            acc.add_incoming(zero, entry)
    width = n_lanes * TILE_VECTORS
    b_row = b.mul(p, i64(width))
    bs = [b.load(b.gep(bp, [b.add(b_row, i64(v * n_lanes))], source_etype=t), typ=vec,
                 align=VECTOR_BYTES) for v in range(TILE_VECTORS)]
    a_row = b.mul(p, i64(MR))
    splat_mask = ir.Constant(ir.VectorType(I32, n_lanes), [0] * n_lanes)
    new = []
    for i in range(MR):
        scalar = b.load(b.gep(a, [b.add(a_row, i64(i))], source_etype=t), typ=t)
        one = b.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(I32, 0))
        splat = b.shuffle_vector(one, ir.Constant(vec, ir.Undefined), splat_mask)
        new.append([b.call(fma, [splat, bs[v], accs[i][v]]) for v in range(TILE_VECTORS)])
    p_next = b.add(p, i64(1))
    p.add_incoming(p_next, loop)
    for i in range(MR):
        for v in range(TILE_VECTORS):
            accs[i][v].add_incoming(new[i][v], loop)
    b.cbranch(b.icmp_signed("<", p_next, kc), loop, done)
    b.position_at_end(done)
    for i in range(MR):
        row = b.mul(i64(i), ldc)
        for v in range(TILE_VECTORS):
            q = b.gep(c, [b.add(row, i64(v * n_lanes))], source_etype=t)
            old = b.load(q, typ=vec, align=np.dtype(dtype).itemsize)
            total = b.select(accumulate, b.fadd(old, new[i][v]), new[i][v])
            b.store(total, q, align=np.dtype(dtype).itemsize)
    b.ret_void()
    return fn
