"""Grouped convolutions with few output channels per group (depthwise ones above all),
plane by plane: the forward convolution and the weight gradient, any stride and dilation.
There the GEMM would run tiles of one or a few rows (one per output channel of a group)
and pack patches for them.

Each thread copies the input planes it needs into its own scratch as zero-padded "phase"
planes, one per column phase of the stride: S[c, f][yy * Wq + xx] = x_padded[c, yy,
xx * sw + f] (rows yy over the padded input, Wq = ceil(padded width / sw)). A kernel tap
(i, j) of output row y then reads one contiguous run of Wo values, from S[c, f][(y * sh +
i * dh) * Wq + s] with f, s = divmod's remainder and quotient of j * dw by sw, whatever
the stride. The copies are masked vector loads (stride 1), loads of two vectors split
into even and odd lanes (stride 2), or gathers; every mask is a build-time constant.
- forward: items (image, group); per output channel and output row, register blocks of
  up to accumulators() vectors of pixels summed over (channel, i, j) in that order (the
  weights broadcast); the epilogue runs on each finished output channel.
- weight gradient: items are input channels; per image, register blocks of output
  channels x taps summed over the output pixels by vector lanes, kept in per-thread
  partial sums across images and added up lane by lane in a fixed order at the end.
Every output element is computed by one thread in one order: the bits do not depend on
the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.arith import round_up, smin
from graphc.backends.llvm.codegen.irtypes import I1, I8, I32, I64, PTR, i64, llvm_type
from graphc.backends.llvm.codegen.vector import (
    accumulators,
    fma_of,
    gather_of,
    masked_load_of,
    masked_store_of,
    splat,
    vector_bytes,
)
from graphc.ops.conv import Window

SLOTS = 8  # per-thread scratch regions; threads beyond them sit out
MAX_SLOT_BYTES = 1 << 20  # one thread's shifted planes and partial sums (L2)
UNROLL = 4  # vectors of an output row up to which the row is unrolled


@dataclass(frozen=True)
class Planes:
    """A convolution's shapes as the planes kernels see them: x (n, c, h, w), w (o, cg,
    kh, kw) in `groups`, stride, padding, dilation, output (ho, wo)."""

    dtype: np.dtype
    n: int
    c: int
    h: int
    w: int
    o: int
    cg: int
    kh: int
    kw: int
    groups: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    ho: int
    wo: int

    @staticmethod
    def of(node, x_shape, w_shape, out_hw) -> Planes:
        window = Window.of(node)
        return Planes(np.dtype(node.dtype), *x_shape, *w_shape, window.groups,
                      *window.stride, *window.padding, *window.dilation, *out_hw)

    @property
    def og(self) -> int:
        return self.o // self.groups

    @property
    def lanes(self) -> int:
        return vector_bytes() // self.dtype.itemsize

    @property
    def taps(self) -> int:
        return self.kh * self.kw

    @property
    def hp(self) -> int:
        return self.h + 2 * self.ph

    @property
    def wq(self) -> int:
        """The row pitch of a phase plane: the padded width over the stride, rounded up."""
        return -(-(self.w + 2 * self.pw) // self.sw)

    @property
    def plane(self) -> int:
        """Elements of one phase plane."""
        return self.hp * self.wq

    def copy_bytes(self, channels: int) -> int:
        """The phase planes of `channels` input channels, and a vector of slack."""
        count = channels * self.sw * self.plane * self.dtype.itemsize
        return round_up(count + vector_bytes(), vector_bytes())

    def tap(self, b, c, row, j: int):
        """Where tap column j of channel slot c reads for the padded input row `row`."""
        phase, shift = (j * self.dw) % self.sw, (j * self.dw) // self.sw
        start = b.mul(b.add(b.mul(c, i64(self.sw)), i64(phase)), i64(self.plane))
        return b.add(start, b.add(b.mul(row, i64(self.wq)), i64(shift)))

    @property
    def forward_slot(self) -> int:
        return self.copy_bytes(self.cg)

    @property
    def weight_slot(self) -> int:
        """The shifted planes of one channel, then og x taps vectors of partial sums."""
        return self.copy_bytes(1) + self.og * self.taps * vector_bytes()

    @property
    def weight_block(self) -> tuple[int, int]:
        """(output channels, taps) of a weight-gradient register block."""
        tb = min(self.taps, accumulators())
        return max(1, min(self.og, accumulators() // tb)), tb


def suits(p: Planes, slot: int) -> bool:
    """Whether a grouped convolution with few output channels per group (fewer than the
    GEMM's register tile has rows: its tiles would run mostly empty) takes this kernel,
    a thread's scratch within MAX_SLOT_BYTES."""
    from graphc.backends.llvm.gemm import mr
    return (p.groups > 1 and p.og < mr() and p.dtype.kind == "f" and slot <= MAX_SLOT_BYTES
            and p.ho > 0 and p.wo > 0)


class _Vec:
    """Vector types and intrinsics of one kernel."""

    def __init__(self, k, p: Planes):
        self.p, self.b = p, k.b
        self.t = llvm_type(p.dtype)
        self.vec = ir.VectorType(self.t, p.lanes)
        self.mask_type = ir.VectorType(I1, p.lanes)
        self.load_fn = masked_load_of(k.mc, self.vec)
        self.store_fn = masked_store_of(k.mc, self.vec)
        self.fma = fma_of(k.mc, self.vec)
        self.zero = ir.Constant(self.vec, None)
        self.align = ir.Constant(I32, p.dtype.itemsize)
        self.k = k

    def below(self, count: int):
        return ir.Constant(self.mask_type, [int(i < count) for i in range(self.p.lanes)])

    def load(self, ptr, at, count: int):
        """count (<= lanes) elements from ptr[at], zeros after."""
        address = self.k.gep(ptr, self.p.dtype, at)
        if count == self.p.lanes:
            return self.b.load(address, typ=self.vec, align=self.p.dtype.itemsize)
        return self.b.call(self.load_fn, [address, self.align, self.below(count), self.zero])

    def store(self, value, ptr, at, count: int):
        address = self.k.gep(ptr, self.p.dtype, at)
        if count == self.p.lanes:
            self.b.store(value, address, align=self.p.dtype.itemsize)
        else:
            self.b.call(self.store_fn, [value, address, self.align, self.below(count)])


def _row_vectors(p: Planes) -> list[tuple[int, int]]:
    """(first column, count) of each vector of an output row."""
    return [(x0, min(p.lanes, p.wo - x0)) for x0 in range(0, p.wo, p.lanes)]


def _slot(k, scratch, slot_bytes: int):
    """(this thread's scratch, i1 whether it takes part: one of the first SLOTS)."""
    b = k.b
    return (b.gep(scratch, [b.mul(k.tid, i64(slot_bytes))], source_etype=I8),
            b.icmp_signed("<", k.tid, i64(SLOTS)))


def _items(k, total: int):
    """This worker's contiguous share [start, stop) of `total` items (SLOTS workers)."""
    b = k.b
    workers = smin(b, k.nthreads, i64(SLOTS))
    chunk = b.sdiv(b.add(i64(total), b.sub(workers, i64(1))), workers)
    start = smin(b, b.mul(k.tid, chunk), i64(total))
    return start, smin(b, b.add(start, chunk), i64(total))


def _fill(k, v: _Vec, x, channel, copy, slot_channel) -> None:
    """The sw phase planes of input plane `channel` (flat n * c + c index) into copy slot
    `slot_channel`: S[f][yy * wq + xx] = x_padded[yy, xx * sw + f], zeros outside; row
    vectors unrolled so every mask is a constant; padding rows stored as zeros."""
    p, b = v.p, k.b
    lanes = p.lanes
    src_plane = b.mul(channel, i64(p.h * p.w))
    dst_plane = b.mul(slot_channel, i64(p.sw * p.plane))
    vectors = [(x0, min(lanes, p.wq - x0)) for x0 in range(0, p.wq, lanes)]

    def mask(columns):
        return ir.Constant(ir.VectorType(I1, len(columns)),
                           [int(col is not None and 0 <= col < p.w) for col in columns])

    def store(value, phase, dst_row, x0, count):
        v.store(value, copy, b.add(dst_row, i64(phase * p.plane + x0)), count)

    def copy_row(src_row, dst_row):
        for x0, count in vectors:
            if p.sw == 1:  # one masked contiguous load
                first = x0 - p.pw
                cols = [first + q if q < count else None for q in range(lanes)]
                at = b.gep(x.ptr, [b.add(src_row, i64(first))], source_etype=v.t)
                store(b.call(v.load_fn, [at, v.align, mask(cols), v.zero]), 0, dst_row, x0,
                      count)
            elif p.sw == 2:  # two vectors, split into even and odd lanes
                first = 2 * x0 - p.pw
                halves = []
                for half in range(2):
                    cols = [first + half * lanes + q if (half * lanes + q) // 2 < count
                            else None for q in range(lanes)]
                    at = b.gep(x.ptr, [b.add(src_row, i64(first + half * lanes))],
                               source_etype=v.t)
                    halves.append(b.call(v.load_fn, [at, v.align, mask(cols), v.zero]))
                for phase in range(2):
                    picked = ir.Constant(ir.VectorType(I32, lanes),
                                         [2 * q + phase for q in range(lanes)])
                    store(b.shuffle_vector(halves[0], halves[1], picked), phase, dst_row, x0,
                          count)
            else:  # a gather per phase
                gather = gather_of(k.mc, v.vec)
                wide = ir.VectorType(I64, lanes)
                for phase in range(p.sw):
                    first = x0 * p.sw + phase - p.pw
                    cols = [first + q * p.sw if q < count else None for q in range(lanes)]
                    offsets = ir.Constant(wide, [first + q * p.sw for q in range(lanes)])
                    pointers = b.gep(x.ptr, [b.add(splat(b, src_row, wide), offsets)],
                                     source_etype=v.t)
                    pointers.type = ir.VectorType(PTR, lanes)  # llvmlite: a vector GEP
                    store(b.call(gather, [pointers, v.align, mask(cols), v.zero]), phase,
                          dst_row, x0, count)

    with k.loop(0, p.hp, "fy") as yy:
        row = b.sub(yy, i64(p.ph))
        row_in = b.and_(b.icmp_signed(">=", row, i64(0)), b.icmp_signed("<", row, i64(p.h)))
        dst_row = b.add(dst_plane, b.mul(yy, i64(p.wq)))
        with b.if_else(row_in) as (inside, padding):
            with inside:
                copy_row(b.add(src_plane, b.mul(row, i64(p.w))), dst_row)
            with padding:
                for phase in range(p.sw):
                    for x0, count in vectors:
                        store(v.zero, phase, dst_row, x0, count)


def forward(k, p: Planes, x, w, out, scratch, epilogue=None) -> None:
    """out = conv2d(x, w): items (image, group); epilogue(n, o0, o1) on each finished
    output channel."""
    if p.n * p.o * p.ho * p.wo == 0:
        return
    b = k.b
    v = _Vec(k, p)
    copy, works = _slot(k, scratch, p.forward_slot)
    vectors = _row_vectors(p)
    block = max(1, min(len(vectors), accumulators()))
    with k.when(works):
        start, stop = _items(k, p.n * p.groups)
        with k.loop(start, stop, "item") as item:
            n, g = b.udiv(item, i64(p.groups)), b.urem(item, i64(p.groups))
            first_c = b.add(b.mul(n, i64(p.c)), b.mul(g, i64(p.cg)))
            with k.loop(0, p.cg, "fc") as c:
                _fill(k, v, x, b.add(first_c, c), copy, c)
            with k.loop(0, p.og, "oo") as oo:
                o = b.add(b.mul(g, i64(p.og)), oo)
                out_plane = b.mul(b.add(b.mul(n, i64(p.o)), o), i64(p.ho * p.wo))
                w_base = b.mul(o, i64(p.cg * p.taps))
                with k.loop(0, p.ho, "y") as y:
                    for first in range(0, len(vectors), block):
                        _forward_block(k, v, p, w, copy, out, w_base, out_plane, y,
                                       vectors[first:first + block])
                if epilogue is not None:
                    epilogue(n, o, b.add(o, i64(1)))


def _forward_block(k, v: _Vec, p: Planes, w, copy, out, w_base, out_plane, y, vectors):
    """Output row y's vectors `vectors` of one output channel, summed over (c, i, j)."""
    b = k.b
    slots = [k.alloca(v.vec) for _ in vectors]
    for slot in slots:
        b.store(v.zero, slot)
    with k.loop(0, p.cg, "c") as c, k.loop(0, p.kh, "i") as i:
        row = b.add(b.mul(y, i64(p.sh)), b.mul(i, i64(p.dh)))
        for j in range(p.kw):
            weight = k.load(w.ptr, w.dtype, b.add(w_base, b.add(
                b.mul(c, i64(p.taps)), b.add(b.mul(i, i64(p.kw)), i64(j)))))
            wv = splat(b, weight, v.vec)
            base = p.tap(b, c, row, j)
            for slot, (x0, count) in zip(slots, vectors):
                value = v.load(copy, b.add(base, i64(x0)), count)
                b.store(b.call(v.fma, [wv, value, b.load(slot, typ=v.vec)]), slot)
    at = b.add(out_plane, b.mul(y, i64(p.wo)))
    for slot, (x0, count) in zip(slots, vectors):
        v.store(b.load(slot, typ=v.vec), out.ptr, b.add(at, i64(x0)), count)


def grad_weight(k, p: Planes, x, g, out, scratch) -> None:
    """gw[o, c, i, j] = sum over n, y, x of g[n, o, y, x] * x[n, c's channel, shifted]:
    items are input channels; per image, blocks of output channels x taps."""
    b = k.b
    v = _Vec(k, p)
    slot, works = _slot(k, scratch, p.weight_slot)
    partials = b.gep(slot, [i64(p.copy_bytes(1))], source_etype=I8)
    ob, tb = p.weight_block
    with k.when(works):
        start, stop = _items(k, p.c)
        with k.loop(start, stop, "item") as cin:
            grp, c = b.udiv(cin, i64(p.cg)), b.urem(cin, i64(p.cg))
            with k.loop(0, p.og * p.taps, "z") as z:
                b.store(v.zero, b.gep(partials, [z], source_etype=v.vec))
            with k.loop(0, p.n, "n") as n:
                _fill(k, v, x, b.add(b.mul(n, i64(p.c)), cin), slot, i64(0))
                for o0 in range(0, p.og, ob):
                    for t0 in range(0, p.taps, tb):
                        _weight_block(k, v, p, g, slot, partials, n, grp, o0,
                                      min(ob, p.og - o0), t0, min(tb, p.taps - t0))
            # gw[o, c, tap] = the lanes of partial (o, tap) added in a fixed order.
            with k.loop(0, p.og * p.taps, "sum") as z:
                oo, tap = b.udiv(z, i64(p.taps)), b.urem(z, i64(p.taps))
                o = b.add(b.mul(grp, i64(p.og)), oo)
                at = b.add(b.mul(b.add(b.mul(o, i64(p.cg)), c), i64(p.taps)), tap)
                value = b.load(b.gep(partials, [z], source_etype=v.vec), typ=v.vec)
                k.store(_lane_sum(b, value, p.lanes), out.ptr, p.dtype, at)


def _weight_block(k, v: _Vec, p: Planes, g, copy, partials, n, grp, o0: int, ob: int,
                  t0: int, tb: int) -> None:
    """Partial sums of output channels o0.. (ob) x taps t0.. (tb) of group grp over image
    n's output pixels, in registers, added onto those of the images before."""
    b = k.b
    slots = [[b.gep(partials, [i64((o0 + oo) * p.taps + t0 + t)], source_etype=v.vec)
              for t in range(tb)] for oo in range(ob)]
    accs = [[k.alloca(v.vec) for _ in range(tb)] for _ in range(ob)]
    for row_slots, row_accs in zip(slots, accs):
        for slot, acc in zip(row_slots, row_accs):
            b.store(b.load(slot, typ=v.vec, align=vector_bytes()), acc)
    g_planes = [b.mul(b.add(b.mul(n, i64(p.o)), b.add(b.mul(grp, i64(p.og)), i64(o0 + oo))),
                      i64(p.ho * p.wo)) for oo in range(ob)]

    def pixels(y, x0, count):
        gv = [v.load(g.ptr, b.add(plane, b.add(b.mul(y, i64(p.wo)), x0)), count)
              for plane in g_planes]
        for t in range(tb):
            i, j = divmod(t0 + t, p.kw)
            row = b.add(b.mul(y, i64(p.sh)), i64(i * p.dh))
            sv = v.load(copy, b.add(p.tap(b, i64(0), row, j), x0), count)
            for oo in range(ob):
                acc = accs[oo][t]
                b.store(b.call(v.fma, [gv[oo], sv, b.load(acc, typ=v.vec)]), acc)

    vectors = _row_vectors(p)
    with k.loop(0, p.ho, "y") as y:
        full = [x0 for x0, count in vectors if count == p.lanes]
        if len(full) <= UNROLL:
            for x0 in full:
                pixels(y, i64(x0), p.lanes)
        else:
            with k.loop(0, len(full), "v") as q:
                pixels(y, b.mul(q, i64(p.lanes)), p.lanes)
        if vectors[-1][1] < p.lanes:
            pixels(y, i64(vectors[-1][0]), vectors[-1][1])
    for row_slots, row_accs in zip(slots, accs):
        for slot, acc in zip(row_slots, row_accs):
            b.store(b.load(acc, typ=v.vec), slot, align=vector_bytes())


def _lane_sum(b, value, lanes: int) -> ir.Value:
    """The sum of a vector's lanes: halves added until one lane is left (a fixed order)."""
    while lanes > 1:
        lanes //= 2
        low = b.shuffle_vector(value, value, ir.Constant(ir.VectorType(I32, lanes),
                                                         list(range(lanes))))
        high = b.shuffle_vector(value, value, ir.Constant(ir.VectorType(I32, lanes),
                                                          list(range(lanes, 2 * lanes))))
        value = b.fadd(low, high)
    return b.extract_element(value, ir.Constant(I32, 0))
