"""Direct stride-1 convolutions over flattened padded planes: the forward convolution and
the input gradient of small convolutions, where packing image patches for the GEMM costs
more than the arithmetic.

Each (n, c) image plane is copied into per-thread scratch, zero-padded to hp x wp, with
slack after it so vector loads never leave the buffer. Output position j = y * wp + x
(columns x >= wo are junk, computed and dropped) is then a 1-D convolution with
contiguous unaligned vector loads:
    out[k, j] = sum over c, ky, kx of w(k, c, ky, kx) * P[c, j + ky * wp + kx].
A register block holds R vectors of j times kb output channels (R * kb <= ACCUMULATORS);
each kernel tap costs R loads, kb broadcasts and R * kb FMAs. A finished block goes to a
per-thread tile (kb planes of padded rows) whose valid columns are copied out.
Threads split (n, block of output channels) items; every output element sums its terms
in one fixed (c, ky, kx) order within one item, so results do not depend on the thread
count. The input gradient is the same kernel on g, padded by kernel - 1 - padding, with
the flipped kernel and the channel roles swapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.irtypes import I8, I32, const, convert, i64, llvm_type
from graphc.backends.llvm.kernel import Kernel

VECTOR_BYTES = 64  # one zmm register
ACCUMULATORS = 24  # vector accumulators of a register block (of 32 zmm registers)
SLOTS = 8  # per-thread scratch regions; threads beyond them sit out
MAX_SLOT_BYTES = 256 * 1024  # one thread's padded image and tile stay in L2
MAX_DEPTH = 400  # channels x kernel taps up to which packing patches costs more than it saves
MAX_PLANE = 256  # output pixels up to which the GEMM's tiles are mostly edge
FMA_CHAINS = 8  # independent accumulators that keep the FMA pipes busy (latency x width)
BLOCK_OVERHEAD = 2  # cycles per tap of a block beyond its FMAs (address arithmetic, loop)


def _up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


@dataclass(frozen=True)
class Direct:
    """One stride-1 convolution as the kernel computes it: an image (n, cin, h, w) padded
    by (ph, pw), `cout` output channels, a kh x kw kernel whose element (k, c, ky, kx)
    is read at k * k_stride + c * c_stride + tap, tap = ky * kw + kx (or, `flipped`,
    the tap mirrored in both axes: the input gradient)."""

    n: int
    cin: int
    h: int
    w: int
    cout: int
    kh: int
    kw: int
    ph: int
    pw: int
    k_stride: int
    c_stride: int
    flipped: bool
    dtype: np.dtype

    @property
    def lanes(self) -> int:
        return VECTOR_BYTES // np.dtype(self.dtype).itemsize

    @property
    def hp(self) -> int:
        return self.h + 2 * self.ph

    @property
    def wp(self) -> int:
        """The row stride of padded planes: a row's right padding is the next row's left
        padding (reads past a row's end land in zeros), so pw zeros between rows suffice
        while every output column still fits in a row."""
        return max(self.w + self.pw, self.w + 2 * self.pw - self.kw + 1)

    @property
    def ho(self) -> int:
        return self.hp - self.kh + 1

    @property
    def wo(self) -> int:
        return self.w + 2 * self.pw - self.kw + 1

    @property
    def vectors(self) -> int:
        """Vectors covering the output positions j < ho * wp of one plane."""
        return -(-self.ho * self.wp // self.lanes)

    @property
    def row(self) -> int:
        """Elements of one tile plane: whole vectors of output positions."""
        return self.vectors * self.lanes

    @property
    def plane(self) -> int:
        """Elements of one padded image plane in scratch, with the slack the last vector's
        farthest tap reads."""
        return _up(self.row + (self.kh - 1) * self.wp + self.kw - 1, self.lanes)

    @property
    def blocks(self) -> tuple[int, int]:
        """(R vectors, kb channels) of the register block, by a cost model in cycles per
        kernel tap: a block's FMAs (one zmm FMA per cycle), at least FMA_CHAINS (latency),
        its loads at two per cycle, and a fixed overhead (ties: fewer loads); channel blocks
        are balanced, the remaining vectors of a plane form a smaller last block."""
        def cycles(r, kb):
            return max(r * kb, FMA_CHAINS, (r + kb) / 2) + BLOCK_OVERHEAD

        best = None
        for r in range(1, min(self.vectors, ACCUMULATORS) + 1):
            count = -(-self.cout // min(self.cout, ACCUMULATORS // r))
            kb = -(-self.cout // count)
            sizes = [kb] * (count - 1) + [self.cout - kb * (count - 1)]
            full, rest = divmod(self.vectors, r)
            cost = sum(full * cycles(r, s) + (cycles(rest, s) if rest else 0) for s in sizes)
            best = min(best or (cost, r + kb, r, kb), (cost, r + kb, r, kb))
        return best[2], best[3]

    @property
    def tile_offset(self) -> int:
        return _up(self.cin * self.plane * np.dtype(self.dtype).itemsize, VECTOR_BYTES)

    @property
    def slot_bytes(self) -> int:
        """One thread's scratch: padded image planes, then the tile."""
        return self.tile_offset + _up(self.blocks[1] * self.row *
                                      np.dtype(self.dtype).itemsize, VECTOR_BYTES)

    @property
    def scratch_bytes(self) -> int:
        return SLOTS * self.slot_bytes


def suits(conv: Direct) -> bool:
    """Whether the direct kernel is the better path. Small convolutions: few terms per
    output (cin * kh * kw <= MAX_DEPTH, where the GEMM's patch packing costs as much as
    its arithmetic) or small output planes (ho * wo <= MAX_PLANE, where most GEMM column
    panels are partial); float dtypes, and a thread's scratch within MAX_SLOT_BYTES.
    Large convolutions keep the packed GEMM (it wastes no junk columns)."""
    small = conv.cin * conv.kh * conv.kw <= MAX_DEPTH or conv.ho * conv.wo <= MAX_PLANE
    return (np.dtype(conv.dtype).kind == "f" and small and conv.ho > 0 and conv.wo > 0
            and conv.slot_bytes <= MAX_SLOT_BYTES)


def emit(k: Kernel, conv: Direct, image, weight, out, scratch, epilogue=None) -> None:
    """The calling thread's share of out (n, cout, ho, wo); epilogue(n, k0, k1) runs on
    each finished block of output planes [k0, k1) of image n."""
    if conv.n * conv.cout * conv.ho * conv.wo == 0:
        return
    b = k.b
    r, kb = conv.blocks
    k_blocks = -(-conv.cout // kb)
    tail = conv.cout - (k_blocks - 1) * kb
    workers = _smin(b, k.nthreads, i64(SLOTS))
    with k.when(b.icmp_signed("<", k.tid, workers)):
        slot = b.gep(scratch, [b.mul(k.tid, i64(conv.slot_bytes))], source_etype=I8)
        padded = slot
        tile = b.gep(slot, [i64(conv.tile_offset)], source_etype=I8)
        _fill_zero(k, padded, conv.dtype, conv.cin * conv.plane)
        items = conv.n * k_blocks
        chunk = b.sdiv(b.add(i64(items), b.sub(workers, i64(1))), workers)
        start = _smin(b, b.mul(k.tid, chunk), i64(items))
        stop = _smin(b, b.add(start, chunk), i64(items))
        with k.loop(start, stop, "item") as item:
            n, block = b.udiv(item, i64(k_blocks)), b.urem(item, i64(k_blocks))
            # Items run n-major: pad image n on a thread's first item and when n changes.
            with k.when(b.or_(b.icmp_signed("==", item, start),
                              b.icmp_signed("==", block, i64(0)))):
                _pad(k, conv, image, n, padded)
            k0 = b.mul(block, i64(kb))
            if tail == kb:
                _planes(k, conv, weight, padded, tile, k0, r, kb)
                _copy_out(k, conv, tile, out, n, k0, kb)
            else:
                with b.if_else(b.icmp_signed("<", block, i64(k_blocks - 1))) as (full, last):
                    with full:
                        _planes(k, conv, weight, padded, tile, k0, r, kb)
                        _copy_out(k, conv, tile, out, n, k0, kb)
                    with last:
                        _planes(k, conv, weight, padded, tile, k0, r, tail)
                        _copy_out(k, conv, tile, out, n, k0, tail)
            if epilogue is not None:
                epilogue(n, k0, _smin(b, b.add(k0, i64(kb)), i64(conv.cout)))


def _smin(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _smax(b, x, y):
    return b.select(b.icmp_signed(">", x, y), x, y)


def _fill_zero(k: Kernel, ptr, dtype, count: int) -> None:
    zero = const(dtype, 0)
    with k.loop(0, count, "zero") as i:
        k.store(zero, ptr, dtype, i)


def _pad(k: Kernel, conv: Direct, image, n, padded) -> None:
    """Copy image n into the interior of the padded planes (the border stays zero)."""
    b = k.b
    dt = conv.dtype
    with k.loop(0, conv.cin, "pc") as c:
        src_plane = b.mul(b.add(b.mul(n, i64(conv.cin)), c), i64(conv.h * conv.w))
        dst_plane = b.add(b.mul(c, i64(conv.plane)), i64(conv.ph * conv.wp + conv.pw))
        with k.loop(0, conv.h, "py") as y:
            src = b.add(src_plane, b.mul(y, i64(conv.w)))
            dst = b.add(dst_plane, b.mul(y, i64(conv.wp)))
            with k.loop(0, conv.w, "px") as x:
                value = k.load(image.ptr, image.dtype, b.add(src, x))
                k.store(convert(b, value, image.dtype, dt), padded, dt, b.add(dst, x))


def _planes(k: Kernel, conv: Direct, weight, padded, tile, k0, r: int, kb: int) -> None:
    """Tile planes 0..kb of output channels k0.. for every output position: blocks of r
    vectors, then one block of the remaining vectors."""
    full, rest = divmod(conv.vectors, r)
    with k.loop(0, full, "jb") as jb:
        _block(k, conv, weight, padded, tile, k0, k.b.mul(jb, i64(r * conv.lanes)), r, kb)
    if rest:
        _block(k, conv, weight, padded, tile, k0, i64(full * r * conv.lanes), rest, kb)


def _block(k: Kernel, conv: Direct, weight, padded, tile, k0, j0, r: int, kb: int) -> None:
    """One register block: r vectors of positions from j0 times kb channels from k0,
    summed over (c, ky, kx) in that order, stored into the tile."""
    b = k.b
    dt = np.dtype(conv.dtype)
    t = llvm_type(dt)
    lanes = conv.lanes
    vec = ir.VectorType(t, lanes)
    fma = k.mc.function(f"llvm.fma.v{lanes}{'f32' if dt.itemsize == 4 else 'f64'}", vec,
                        [vec] * 3)
    size = dt.itemsize
    zero = ir.Constant(vec, [0.0] * lanes)
    splat_mask = ir.Constant(ir.VectorType(I32, lanes), [0] * lanes)
    slots = [[k.alloca(vec) for _ in range(r)] for _ in range(kb)]
    for row in slots:
        for slot in row:
            b.store(zero, slot)
    tap0, dky, dkx = ((conv.kh * conv.kw - 1, -conv.kw, -1) if conv.flipped
                      else (0, conv.kw, 1))
    w_block = b.add(b.mul(k0, i64(conv.k_stride)), i64(tap0))
    # Kernel rows whose padded image rows are all padding for every output row of the
    # block add only zeros: skipped (the input gradient pads by kernel - 1 - padding).
    y0 = b.udiv(j0, i64(conv.wp))
    y1 = _smin(b, b.udiv(b.add(j0, i64(r * lanes - 1)), i64(conv.wp)), i64(conv.ho - 1))
    first = _smax(b, b.sub(i64(conv.ph), y1), i64(0))
    last = _smin(b, b.sub(i64(conv.ph + conv.h), y0), i64(conv.kh))
    with k.loop(0, conv.cin, "c") as c:
        p_c = b.add(b.mul(c, i64(conv.plane)), j0)
        w_c = b.add(w_block, b.mul(c, i64(conv.c_stride)))
        with k.loop(first, last, "ky") as ky:
            p_row = b.add(p_c, b.mul(ky, i64(conv.wp)))
            w_row = b.add(w_c, b.mul(ky, i64(dky)))
            accs = [[b.load(slot, typ=vec) for slot in row] for row in slots]
            for kx in range(conv.kw):
                xs = [b.load(k.gep(padded, dt, b.add(p_row, i64(kx + v * lanes))), typ=vec,
                             align=size) for v in range(r)]
                for kk in range(kb):
                    at = b.add(w_row, i64(kx * dkx + kk * conv.k_stride))
                    scalar = convert(b, k.load(weight.ptr, weight.dtype, at), weight.dtype, dt)
                    one = b.insert_element(ir.Constant(vec, ir.Undefined), scalar,
                                           ir.Constant(I32, 0))
                    w_splat = b.shuffle_vector(one, ir.Constant(vec, ir.Undefined), splat_mask)
                    accs[kk] = [b.call(fma, [w_splat, xs[v], accs[kk][v]]) for v in range(r)]
            for row, values in zip(slots, accs):
                for slot, value in zip(row, values):
                    b.store(value, slot)
    for kk, row in enumerate(slots):
        for v, slot in enumerate(row):
            at = b.add(j0, i64(kk * conv.row + v * lanes))
            b.store(b.load(slot, typ=vec), k.gep(tile, dt, at), align=size)


def _copy_out(k: Kernel, conv: Direct, tile, out, n, k0, kb: int) -> None:
    """out[n, k0 + kk, y, x] = tile[kk, y * wp + x] for the valid columns x < wo."""
    b = k.b
    dt = conv.dtype
    with k.loop(0, kb, "ok") as kk:
        plane = b.mul(b.add(b.mul(n, i64(conv.cout)), b.add(k0, kk)), i64(conv.ho * conv.wo))
        src_plane = b.mul(kk, i64(conv.row))
        with k.loop(0, conv.ho, "oy") as y:
            dst = b.add(plane, b.mul(y, i64(conv.wo)))
            src = b.add(src_plane, b.mul(y, i64(conv.wp)))
            with k.loop(0, conv.wo, "ox") as x:
                value = k.load(tile, dt, b.add(src, x))
                k.store(convert(b, value, dt, out.dtype), out.ptr, out.dtype, b.add(dst, x))
