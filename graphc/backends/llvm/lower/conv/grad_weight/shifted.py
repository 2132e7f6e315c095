"""The "shifted" path: each input plane copied kw times, zero-padded and shifted by a
kernel column with the output's row pitch, so every tap reads one contiguous run,
summed by vector FMAs into register blocks of output channels x taps."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.arith import round_up
from graphc.backends.llvm.codegen.irtypes import I1, I8, I32, I64, i64, llvm_type
from graphc.backends.llvm.codegen.vector import (
    fma_of,
    masked_load_of,
    native_vector_bytes,
    splat,
    vector_bytes,
    vector_registers,
)
from graphc.backends.llvm.lower.conv.grad_weight.common import (
    Shapes,
    Vectors,
    by_size,
)

MAX_BLOCK = 8  # output channels (or taps) per block: their addresses stay in registers
UNROLL = 4  # pixel vectors per image up to which the pixel loop is unrolled
CHUNK_BYTES = 256 * 1024  # g and shifted planes of the images one pass reads (L2)
MIN_STEPS = 64  # vector steps per block and pass, at least (a pass costs a flush)


def fits(ob: int, tb: int) -> bool:
    """Whether a block's registers fit the vector register file: its ob x tb
    accumulators, the ob gradient vectors each pixel step holds, and the shifted vector it
    streams (4 x 3 did not fit AVX2's 16: one accumulator went to the stack and back at
    every step, a third of LeNet's weight-gradient time)."""
    return ob * tb + ob + 1 <= vector_registers()


@functools.lru_cache(maxsize=64)
def _blocking(outputs: int, taps: int, registers: int) -> tuple[int, int]:
    """(output channels, taps) of a register block for a register file of `registers`
    vectors. The cost of a block is its FMAs plus half its vector loads per pixel vector;
    the choice minimizes the cost of the whole outputs x taps grid on one thread plus
    that of the busier thread on two (threads split the blocks into contiguous ranges;
    these machines have two cores)."""
    def cost(ob: int, tb: int) -> float:
        sizes_o = np.minimum(ob, outputs - np.arange(0, outputs, ob))
        sizes_t = np.minimum(tb, taps - np.arange(0, taps, tb))
        items = (np.outer(sizes_o, sizes_t) + (sizes_o[:, None] + sizes_t[None, :]) / 2)
        items = items.ravel()
        half = -(-items.size // 2)
        return items.sum() + max(items[:half].sum(), items[half:].sum())

    shapes = [(ob, tb) for ob in range(1, min(MAX_BLOCK, outputs) + 1)
              for tb in range(1, min(MAX_BLOCK, taps) + 1) if fits(ob, tb)]
    return min(shapes, key=lambda s: (cost(*s), -s[0] * s[1]))


def _lanes(dtype: np.dtype, pixels: int) -> int:
    """Whole or half vectors over a plane's pixels, whichever costs fewer vector ops, a
    half vector costing half a whole one only where the CPU splits its widest vectors
    (Zen 4: 100 pixels take 7 zmm = 14 halves or 13 ymm; on AVX2, 13 ymm or 25 xmm)."""
    widest = vector_bytes() // dtype.itemsize

    def cost(n: int) -> tuple[float, int]:
        pumps = max(1, n * dtype.itemsize // native_vector_bytes())
        return round_up(pixels, n) // n * pumps, -n

    return min((widest, widest // 2), key=cost)


@dataclass(frozen=True)
class Shifted(Shapes):
    """The shifted path's register block, image chunks and scratch layout."""

    ob: int  # output channels per block
    tb: int  # taps (c, i, j) per block
    lanes: int  # of a vector
    chunk: int  # images per pass over the blocks

    @staticmethod
    def of(dtype, x_shape, g_shape, kernel, padding) -> Shifted:
        dtype = np.dtype(dtype)
        n_, c_, h, wd = x_shape
        _, o_, ho, wo = g_shape
        kh, kw = kernel
        ob, tb = _blocking(o_, c_ * kh * kw, vector_registers())
        lanes = _lanes(dtype, ho * wo)
        per_image = (o_ * ho * wo + c_ * kw * (h + 2 * padding[0]) * wo) * dtype.itemsize
        steps = -(-ho * wo // lanes)
        chunk = min(n_, max(CHUNK_BYTES // per_image, -(-MIN_STEPS // steps)))
        return Shifted(*Shapes.values(dtype, x_shape, g_shape, kernel, padding),
                       ob, tb, lanes, chunk)

    @property
    def plane(self) -> int:
        """Elements of a shifted plane: the padded input's rows, the output's columns."""
        return (self.h + 2 * self.ph) * self.wo

    @property
    def blocks(self) -> tuple[int, int]:
        """(output channel blocks, tap blocks)."""
        return -(-self.o // self.ob), -(-self.taps // self.tb)

    @property
    def chunks(self) -> int:
        return -(-self.n // self.chunk)

    @property
    def partials(self) -> int:
        """Byte offset of the per-block partial sums kept from one chunk to the next,
        after the shifted planes and a vector of slack (masked tail loads)."""
        planes = self.n * self.c * self.kw * self.plane * self.dtype.itemsize
        return round_up(planes + vector_bytes(), vector_bytes())

    @property
    def block_bytes(self) -> int:
        return self.ob * self.tb * self.lanes * self.dtype.itemsize

    @property
    def end(self) -> int:
        """Scratch bytes: the shifted planes, then every block's partial sums."""
        kb, tb = self.blocks
        return self.partials + kb * tb * self.block_bytes


def shifted_grad_weight(k, p: Shifted, x, g, out, scratch) -> None:
    """Threads fill the shifted planes by (n, c), meet at a barrier, then split the grid of
    (output channel block, tap block); each gw element is summed by one thread in one
    order (per lane over chunks, images and pixels, then a shuffle tree), whatever the
    thread count."""
    _fill_shifted(k, p, x, scratch)
    b = k.b
    k.mc.wait_all(b, k.nthreads)  # blocks read planes other threads wrote
    kb, tb = p.blocks
    start, stop = k.split(kb * tb)
    with k.loop(0, p.chunks, "chunk") as chunk:
        with k.loop(start, stop, "block") as item:
            o0 = b.mul(b.udiv(item, i64(tb)), i64(p.ob))
            t0 = b.mul(b.urem(item, i64(tb)), i64(p.tb))
            block = _Block(k, p, g, out, scratch, chunk, item, o0, t0)
            by_size(b, o0, p.ob, p.o, lambda o_here: by_size(
                b, t0, p.tb, p.taps, lambda t_here: block.emit(o_here, t_here)))


@dataclass
class _Block:
    """One register block: output channels o0.. times taps t0.., over one chunk of images."""

    k: object
    p: Shifted
    g: object
    out: object
    scratch: ir.Value
    chunk: ir.Value
    item: ir.Value
    o0: ir.Value
    t0: ir.Value

    def emit(self, ob: int, tb: int) -> None:
        """The block's sums: from zero (first chunk) or the partial sums the last chunk
        left, over this chunk's images, back into the partial sums; after the last chunk
        each one's lanes are added into gw."""
        k, p, b = self.k, self.p, self.k.b
        vec = ir.VectorType(llvm_type(p.dtype), p.lanes)
        align = p.lanes * p.dtype.itemsize
        accs = [[k.alloca(vec) for _ in range(tb)] for _ in range(ob)]
        partial = b.gep(self.scratch, [b.add(i64(p.partials), b.mul(self.item,
                                                                    i64(p.block_bytes)))],
                        source_etype=I8)

        def slot(index):  # vector index = o * tb + tap of this block's partial sums
            return b.gep(partial, [index], source_etype=vec)

        first = b.icmp_signed("==", self.chunk, i64(0))
        for o, row in enumerate(accs):
            for tap, acc in enumerate(row):
                # On the first chunk the slot holds stale scratch: loaded, not used.
                earlier = b.load(slot(i64(o * tb + tap)), typ=vec, align=align)
                b.store(b.select(first, ir.Constant(vec, None), earlier), acc)
        self._images(accs, vec)
        for o, row in enumerate(accs):
            for tap, acc in enumerate(row):
                b.store(b.load(acc, typ=vec), slot(i64(o * tb + tap)), align=align)
        with k.when(b.icmp_signed("==", self.chunk, i64(p.chunks - 1))):
            # gw[o0 + o, t0 + tap] = the sum of partial (o, tap)'s lanes.
            with k.loop(0, ob * tb, "sum") as index:
                o, tap = b.udiv(index, i64(tb)), b.urem(index, i64(tb))
                at = b.add(b.mul(b.add(self.o0, o), i64(p.taps)), b.add(self.t0, tap))
                total = _lane_sum(b, b.load(slot(index), typ=vec, align=align), p.lanes)
                k.store(total, self.out.ptr, p.dtype, at)

    def _images(self, accs, vec) -> None:
        """acc[o][tap] += g[n, o0 + o, q] * S[n, tap's plane][q + tap's row] per lane, over
        this chunk's images n and the pixels q in vectors (the last one masked)."""
        k, p, b = self.k, self.p, self.k.b
        ob, tb = len(accs), len(accs[0])
        t = llvm_type(p.dtype)
        fma = fma_of(k.mc, vec)
        per_tap = p.kh * p.kw
        offsets = []  # of each tap's run in an image's shifted planes
        for tap in range(tb):
            flat = b.add(self.t0, i64(tap))
            c, ij = b.udiv(flat, i64(per_tap)), b.urem(flat, i64(per_tap))
            i, j = b.udiv(ij, i64(p.kw)), b.urem(ij, i64(p.kw))
            plane = b.add(b.mul(c, i64(p.kw)), j)
            offsets.append(b.add(b.mul(plane, i64(p.plane)), b.mul(i, i64(p.wo))))
        pixels = p.ho * p.wo
        n0 = b.mul(self.chunk, i64(p.chunk))
        n1 = b.add(n0, i64(p.chunk))
        n1 = b.select(b.icmp_signed("<", n1, i64(p.n)), n1, i64(p.n))
        with k.loop(n0, n1, "n") as n:
            g_base = b.mul(b.add(b.mul(n, i64(p.o)), self.o0), i64(pixels))
            grads = [k.gep(self.g.ptr, p.dtype, b.add(g_base, i64(o * pixels)))
                     for o in range(ob)]
            s_base = b.mul(n, i64(p.c * p.kw * p.plane))
            shifted = [k.gep(self.scratch, p.dtype, b.add(s_base, off)) for off in offsets]

            def step(q, mask):
                def load(ptr):
                    at = b.gep(ptr, [q], source_etype=t)
                    if mask is None:
                        return b.load(at, typ=vec, align=p.dtype.itemsize)
                    masked = masked_load_of(k.mc, vec)
                    return b.call(masked, [at, ir.Constant(I32, p.dtype.itemsize), mask,
                                           ir.Constant(vec, None)])

                gv = [load(ptr) for ptr in grads]
                for tap, ptr in enumerate(shifted):
                    sv = load(ptr)
                    for o in range(ob):
                        acc = accs[o][tap]
                        b.store(b.call(fma, [gv[o], sv, b.load(acc, typ=vec)]), acc)

            whole, rest = divmod(pixels, p.lanes)
            if whole <= UNROLL:
                for v in range(whole):
                    step(i64(v * p.lanes), None)
            else:
                with k.loop(0, whole, "q") as v:
                    step(b.mul(v, i64(p.lanes)), None)
            if rest:
                mask = ir.Constant(ir.VectorType(I1, p.lanes),
                                   [1] * rest + [0] * (p.lanes - rest))
                step(i64(whole * p.lanes), mask)


def _lane_sum(b, v, lanes: int) -> ir.Value:
    """The sum of a vector's lanes: halves added until one lane is left (a fixed order)."""
    while lanes > 1:
        lanes //= 2
        low = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, lanes), list(range(lanes))))
        high = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, lanes),
                                                  list(range(lanes, 2 * lanes))))
        v = b.fadd(low, high)
    return b.extract_element(v, ir.Constant(I32, 0))


def _fill_shifted(k, p: Shifted, x, scratch) -> None:
    """S[n, c, j][yy * Wo + xx] = x[n, c, yy - ph, xx + j - pw], zero outside the image,
    in masked vector loads and stores (short loops unrolled); each thread fills whole
    (n, c) planes."""
    b = k.b
    start, stop = k.split(p.n * p.c)
    with k.loop(start, stop, "plane") as nc, k.loop(0, p.kw, "j") as j:
        dst = b.mul(b.add(b.mul(nc, i64(p.kw)), j), i64(p.plane))
        _zeros(k, p, scratch, dst, p.ph * p.wo)  # the padding rows above
        _zeros(k, p, scratch, b.add(dst, i64((p.ph + p.h) * p.wo)), p.ph * p.wo)
        src = b.add(b.mul(nc, i64(p.h * p.w)), b.sub(j, i64(p.pw)))
        # The output columns [lo, hi) read inside the image: input column xx + j - pw.
        lo = b.sub(i64(p.pw), j)
        lo = b.select(b.icmp_signed(">", lo, i64(0)), lo, i64(0))
        hi = b.sub(i64(p.w + p.pw), j)
        hi = b.select(b.icmp_signed("<", hi, i64(p.wo)), hi, i64(p.wo))
        _repeat(k, p.h, lambda iy: _shifted_row(
            k, p, x, scratch, b.add(dst, b.mul(b.add(iy, i64(p.ph)), i64(p.wo))),
            b.add(src, b.mul(iy, i64(p.w))), lo, hi))


def _repeat(k, count: int, emit) -> None:
    """emit(i) for i in range(count): unrolled when short, a loop otherwise."""
    if count <= UNROLL:
        for i in range(count):
            emit(i64(i))
        return
    with k.loop(0, count, "r") as i:
        emit(i)


def _zeros(k, p: Shifted, scratch, start, count: int) -> None:
    """scratch[start : start + count] = 0 (elements of p.dtype)."""
    v = Vectors(k, p.dtype)
    b = k.b
    whole, rest = divmod(count, v.lanes)

    def store(i, mask):
        at = b.gep(scratch, [b.add(start, b.mul(i, i64(v.lanes)))], source_etype=v.t)
        b.call(v.store, [v.zero, at, v.align, mask])

    _repeat(k, whole, lambda i: store(i, v.lanes_below(v.lanes)))
    if rest:
        store(i64(whole), v.lanes_below(rest))


def _shifted_row(k, p: Shifted, x, scratch, dst, src, lo, hi) -> None:
    """One row of a shifted plane: scratch[dst + xx] = x[src + xx] for the output columns
    lo <= xx < hi (inside the image), zero for the others. Masked-off lanes may address
    outside x: they are never accessed."""
    b = k.b
    v = Vectors(k, p.dtype)
    wide = ir.VectorType(I64, v.lanes)
    low, high = splat(b, lo, wide), splat(b, hi, wide)
    for first in range(0, p.wo, v.lanes):
        columns = ir.Constant(wide, list(range(first, first + v.lanes)))
        inside = b.and_(b.icmp_signed(">=", columns, low), b.icmp_signed("<", columns, high))
        at = b.gep(x.ptr, [b.add(src, i64(first))], source_etype=v.t)  # not inbounds
        value = b.call(v.load, [at, v.align, inside, v.zero])
        at = b.gep(scratch, [b.add(dst, i64(first))], source_etype=v.t)
        b.call(v.store, [value, at, v.align, v.lanes_below(p.wo - first)])

