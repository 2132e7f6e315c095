"""The vector pieces attention's kernels are made of (lower/attention.py): a row vector
times a matrix, a rank-one update of a matrix, and packing an operand into scratch, each
on rows padded to whole vectors of the target (codegen/vector.py), with enough
accumulators in flight to hide the FMA latency; and the per-thread scratch layout.

Every sum runs in an order fixed at compile time (the same for any thread count)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import const, i64, llvm_type
from graphc.backends.llvm.codegen.vector import accumulators, fma_of, lanes, splat, vector_bytes
from graphc.backends.llvm.gemm.blocking import SCRATCH_SLOTS
from graphc.backends.llvm.schedule.views import ALIGN

# Query rows the kernels take at once: each element of a packed key or value matrix is
# loaded once for all of them, and an accumulated gradient row once per update.
ROWS = 4
# Vectors of one row a block computes at most (ROWS of them in flight: independent
# accumulators, within the target's register budget).
BLOCK_VECTORS = 8


def padded(count: int, dtype: np.dtype) -> int:
    """count rounded up to whole vectors of the target."""
    n = lanes(dtype)
    return max(n, -(-count // n) * n)


@dataclass
class Scratch:
    """Named buffers carved out of one thread slot of the kernel's scratch, each aligned
    to ALIGN bytes; `slots` thread slots (threads beyond them sit the kernel out)."""

    dtype: np.dtype
    offsets: dict[str, int] = field(default_factory=dict)
    size: int = 0  # bytes of one slot
    slots: int = 1

    def add(self, name: str, count: int) -> None:
        self.offsets[name] = self.size
        self.size += -(-max(count, 1) * self.dtype.itemsize // ALIGN) * ALIGN

    def bytes(self) -> int:
        return self.size * self.slots

    def pointers(self, b: ir.IRBuilder, base: ir.Value, slot: ir.Value) -> dict[str, ir.Value]:
        """Each buffer's pointer in thread slot `slot` of the scratch at `base`."""
        start = b.mul(slot, i64(self.size))
        return {name: b.gep(base, [b.add(start, i64(offset))], inbounds=True,
                            source_etype=ir.IntType(8))
                for name, offset in self.offsets.items()}


def slots_for(units: int) -> int:
    return max(1, min(SCRATCH_SLOTS, units))


class Rows:
    """Vector code over one kernel's float rows of dtype `dtype`."""

    def __init__(self, k, dtype: np.dtype):
        self.k, self.b = k, k.b
        self.dtype = np.dtype(dtype)
        self.t = llvm_type(self.dtype)
        self.lanes = lanes(self.dtype)
        self.vec = ir.VectorType(self.t, self.lanes)
        self.fma = fma_of(k.mc, self.vec)
        self.align = vector_bytes()
        self.zero = ir.Constant(self.vec, [0.0] * self.lanes)

    # ----- memory -------------------------------------------------------------------------
    def at(self, ptr: ir.Value, index) -> ir.Value:
        return self.b.gep(ptr, [index if isinstance(index, ir.Value) else i64(index)],
                          inbounds=True, source_etype=self.t)

    def load_vec(self, ptr: ir.Value, index) -> ir.Value:
        return self.b.load(self.at(ptr, index), typ=self.vec, align=self.align)

    def store_vec(self, value: ir.Value, ptr: ir.Value, index) -> None:
        self.b.store(value, self.at(ptr, index), align=self.align)

    def load(self, ptr: ir.Value, index) -> ir.Value:
        return self.b.load(self.at(ptr, index), typ=self.t)

    def store(self, value: ir.Value, ptr: ir.Value, index) -> None:
        self.b.store(value, self.at(ptr, index))

    def number(self, value: float) -> ir.Value:
        return const(self.dtype, value)

    # ----- loops --------------------------------------------------------------------------
    def blocks(self, width: int, per_block: int, body) -> None:
        """body(first element, vectors) over a row of `width` (whole vectors) in blocks of
        at most `per_block` vectors: a loop over the full blocks, then the rest."""
        n = width // self.lanes
        full, rest = divmod(n, per_block)
        if full == 1:
            body(i64(0), per_block)
        elif full:
            with self.k.loop(0, full, "blk") as blk:
                body(self.b.mul(blk, i64(per_block * self.lanes)), per_block)
        if rest:
            body(i64(full * per_block * self.lanes), rest)

    def rows_times(self, x: ir.Value, x_ld: int, count, m: ir.Value, ld: int, width: int,
                   out: ir.Value, out_ld: int) -> None:
        """out[r * out_ld + 0:width] = sum over e < count of x[r * x_ld + e] *
        m[e * ld + 0:width] for each of the ROWS rows r (width, ld and out_ld whole
        vectors, m's rows aligned): ROWS row vectors times one matrix, each element of m
        loaded once for all of them. count may be a run-time value."""
        b = self.b
        count = count if isinstance(count, ir.Value) else i64(count)
        per_block = max(1, min(BLOCK_VECTORS, (accumulators() - 2) // ROWS))

        def block(first, vectors):
            accs = [[self.k.alloca(self.vec) for _ in range(vectors)] for _ in range(ROWS)]
            for row in accs:
                for acc in row:
                    b.store(self.zero, acc)
            with self.k.loop(0, count, "e") as e:
                base = b.add(b.mul(e, i64(ld)), first)
                mvs = [self.load_vec(m, b.add(base, i64(j * self.lanes)))
                       for j in range(vectors)]
                for r, row in enumerate(accs):
                    xe = splat(b, self.load(x, b.add(e, i64(r * x_ld))), self.vec)
                    for acc, mv in zip(row, mvs):
                        b.store(b.call(self.fma, [xe, mv, b.load(acc, typ=self.vec)]), acc)
            for r, row in enumerate(accs):
                for j, acc in enumerate(row):
                    at = b.add(first, i64(r * out_ld + j * self.lanes))
                    self.store_vec(b.load(acc, typ=self.vec), out, at)

        self.blocks(width, per_block, block)

    def rank_update(self, m: ir.Value, ld: int, rows, coeff: ir.Value, coeff_ld: int,
                    x: ir.Value, x_ld: int, width: int) -> None:
        """m[c * ld + 0:width] += sum over the ROWS rows r of coeff[r * coeff_ld + c] *
        x[r * x_ld + 0:width] for c < rows (whole vectors): a rank-ROWS update, each row
        of m loaded and stored once for all of them."""
        b = self.b
        per_block = max(1, min(BLOCK_VECTORS, (accumulators() - 1) // (ROWS + 1)))

        def block(first, vectors):
            xs = [[self.load_vec(x, b.add(first, i64(r * x_ld + j * self.lanes)))
                   for j in range(vectors)] for r in range(ROWS)]
            with self.k.loop(0, rows, "c") as c:
                base = b.add(b.mul(c, i64(ld)), first)
                accs = [self.load_vec(m, b.add(base, i64(j * self.lanes)))
                        for j in range(vectors)]
                for r in range(ROWS):
                    cc = splat(b, self.load(coeff, b.add(c, i64(r * coeff_ld))), self.vec)
                    accs = [b.call(self.fma, [cc, xv, acc]) for xv, acc in zip(xs[r], accs)]
                for j, acc in enumerate(accs):
                    self.store_vec(acc, m, b.add(base, i64(j * self.lanes)))

        self.blocks(width, per_block, block)

    def fill(self, ptr: ir.Value, count: int, value: float = 0.0) -> None:
        """ptr[0:count] = value (count whole vectors)."""
        v = splat(self.b, self.number(value), self.vec) if value else self.zero
        with self.k.loop(0, count // self.lanes, "f") as f:
            self.store_vec(v, ptr, self.b.mul(f, i64(self.lanes)))

    def gather(self, dst: ir.Value, dst_row: int, dst_col: int, rows: int, cols: int,
               src: ir.Value, base: ir.Value, row_stride: int, col_stride: int) -> None:
        """dst[r * dst_row + c * dst_col] = src[base + r * row_stride + c * col_stride] for
        r < rows, c < cols: packs (or transposes) an operand into scratch."""
        b = self.b
        with self.k.loop(0, rows, "pr") as r:
            src_row = b.add(base, b.mul(r, i64(row_stride)))
            dst_base = b.mul(r, i64(dst_row))
            with self.k.loop(0, cols, "pc") as c:
                value = self.load(src, b.add(src_row, b.mul(c, i64(col_stride))))
                self.store(value, dst, b.add(dst_base, b.mul(c, i64(dst_col))))

    def copy_out(self, dst: ir.Value, dst_base: ir.Value, src: ir.Value, count: int) -> None:
        """dst[dst_base + 0:count] = src[0:count] (a contiguous output row)."""
        b = self.b
        with self.k.loop(0, count, "o") as o:
            self.store(self.load(src, o), dst, b.add(dst_base, o))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def row_chunks(rows: int, units: int) -> int:
    """How many chunks to cut each of `units` row ranges of `rows` into, so there are a
    few units per scratch slot (threads) and each chunk keeps at least 16 rows to pay
    for packing its keys and values."""
    want = 4 * SCRATCH_SLOTS
    if units >= want or rows <= 16:
        return 1
    return max(1, min(ceil_div(want, units), rows // 16))

