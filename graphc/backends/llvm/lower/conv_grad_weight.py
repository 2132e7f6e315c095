"""conv2d_grad_weight: gw[o, c, i, j] = sum over n, y, x of g[n, o, y, x] * x[n, c, shifted].

Three paths for the float dtypes the op accepts (`grad_weight_path` picks one from the
shapes and says why):
- "channels" (stride 1, planes of at most one vector of output pixels): g transposed to
  gT[n, pixel, o]; vectors over output channels times broadcast image values, for only
  the (pixel, tap) pairs whose input pixel lies inside the image.
- "shifted" (stride 1, small problems): each input plane is copied kw times into scratch,
  zero-padded and shifted by a kernel column, with the output's row pitch:
  S[n, c, j][yy * Wo + xx] = x_padded[n, c, yy, xx + j]. Every tap then reads one
  contiguous run: gw[o, c, i, j] = sum over n, q of g[n, o, q] * S[n, c, j][q + i * Wo],
  q over the Ho * Wo output pixels, summed by vector FMAs into registers holding a block
  of output channels times taps (no packing, no junk lanes).
- "gemm": one GEMM, gw (O x CKK) = g (O x N*HoWo) @ patches(x) (N*HoWo x CKK), whose depth
  runs over the batch and the image; a long depth is cut into image chunks (batch items
  of the GEMM, so threads do not pack the same patches) whose partial sums are added in
  chunk order.
Every gw element (every chunk's partial sum) is summed by one thread in a fixed order,
so results do not depend on the thread count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm import gemm
from graphc.backends.llvm.gemm import transpose as gemm_transpose
from graphc.backends.llvm.irtypes import I1, I8, I32, PTR, i64, llvm_type
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.conv import column_range

VECTOR_BYTES = 64  # one zmm register (or half of it, where that fits the pixels better)
MAX_ACCUMULATORS = 24  # vector registers a block of output channels x taps may hold
MAX_BLOCK = 8  # output channels (or taps) per block: their addresses stay in registers
UNROLL = 4  # pixel vectors per image up to which the pixel loop is unrolled
CHUNK_BYTES = 256 * 1024  # g and shifted planes of the images one pass reads (L2)
MIN_STEPS = 64  # vector steps per block and pass, at least (a pass costs a flush)
SHIFTED_BYTES = 4 * 1024 * 1024  # the largest shifted copy the "shifted" path makes


def grad_weight_path(dtype, x_shape, g_shape, kernel, stride, padding) -> str:
    """"channels", "shifted" or "gemm" (see the module docstring), for stride 1:
    - planes of at most one vector of output pixels (and kernels of at most
      MAX_ACCUMULATORS taps) take the channels path: a vector over pixels multiplies
      padding there too (4x4 planes, 3x3 kernels, padding 1: 44 of 144 products), a
      vector over output channels skips it;
    - other problems whose shifted copy stays in the caches (at most SHIFTED_BYTES) take
      the shifted path, which does no packing and only useful FMAs, where the GEMM packs
      image patches (small planes: mostly padding and gathers) and fills 8 x 32 register
      tiles that few output channels leave half empty: the LeNet and digits layers ran
      at 10-40 GFLOP/s on it;
    - big ones (the 32x32, 64-channel benchmark layer: a 27 MB copy) and strided ones
      keep the GEMM, whose packing is amortized over many channels."""
    n_, c_, h, _ = x_shape
    _, o_, ho, wo = g_shape
    if tuple(stride) != (1, 1) or n_ * c_ * o_ * ho * wo == 0:
        return "gemm"
    itemsize = np.dtype(dtype).itemsize
    if ho * wo <= VECTOR_BYTES // itemsize and kernel[0] * kernel[1] <= MAX_ACCUMULATORS:
        return "channels"
    shifted = n_ * c_ * kernel[1] * (h + 2 * padding[0]) * wo * itemsize
    return "shifted" if shifted <= SHIFTED_BYTES else "gemm"


def _plan(node, x_shape, g_shape) -> Channels | Shifted | None:
    """The plan of the channels or shifted path, or None for the GEMM."""
    kernel, padding = node.attrs["kernel"], node.attrs["padding"]
    path = grad_weight_path(node.dtype, x_shape, g_shape, kernel, node.attrs["stride"],
                            padding)
    plans = {"channels": Channels, "shifted": Shifted}
    if path not in plans:
        return None
    return plans[path].of(node.dtype, x_shape, g_shape, kernel, padding)


def _grad_weight_scratch(node, shapes) -> int:
    x, g, out = shapes
    plan = _plan(node, x, g)
    if plan is not None:
        return plan.end
    return _split_layout(node.dtype, x, g, out)[2]


@lowering("conv2d_grad_weight", scratch=_grad_weight_scratch)
def emit_conv2d_grad_weight(k, node, out, ins, scratch) -> None:
    """gw[o, c, i, j] = sum over n, y, x of g[n, o, y, x] * x[n, c, shifted]."""
    x, g = ins
    plan = _plan(node, x.shape, g.shape)
    if isinstance(plan, Channels):
        _channels_grad_weight(k, plan, x, g, out, scratch)
    elif isinstance(plan, Shifted):
        _shifted_grad_weight(k, plan, x, g, out, scratch)
    else:
        _gemm_grad_weight(k, x, g, out, node.attrs["stride"], node.attrs["padding"], scratch)


SPLIT_FROM = 1 << 14  # depth (images x output pixels) from which the GEMM is split
SPLITS = 4  # the most image chunks of a split GEMM


def _splits(n: int, depth: int) -> int:
    """Image chunks of the GEMM path: the largest divisor of the batch up to SPLITS once
    the depth is long. Fixed by the shapes (not the thread count), so the sums' order and
    the bits are the same on any number of threads."""
    if depth < SPLIT_FROM:
        return 1
    return max(s for s in range(1, SPLITS + 1) if n % s == 0)


def _split_layout(dtype, x_shape, g_shape, out_shape) -> tuple[int, int, int]:
    """(chunks, byte offset of the chunks' partial sums in the scratch, scratch bytes)."""
    n_, _, _, _ = x_shape
    o_, c_, kh, kw = out_shape
    depth = n_ * g_shape[2] * g_shape[3]
    splits = _splits(n_, depth)
    at = gemm.scratch_bytes(splits, o_, c_ * kh * kw, depth // splits, dtype)
    partials = splits * o_ * c_ * kh * kw * np.dtype(dtype).itemsize if splits > 1 else 0
    return splits, at, at + partials


def _gemm_grad_weight(k, x, g, out, stride, padding, scratch) -> None:
    """gw (O x CKK) = g (O x N*HoWo) @ patches of x (N*HoWo x CKK): a GEMM whose depth
    runs over the batch and the image. A long depth is split into image chunks, one
    batch item of the GEMM each (every thread then packs only its own chunks' patches,
    where splitting rows would have every thread pack them all), summed after a barrier
    in chunk order."""
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = out.shape
    ho, wo = g.shape[2:]
    (sh, sw), (ph, pw) = stride, padding
    dt = out.dtype
    ckk = c_ * kh * kw
    splits, at, _ = _split_layout(dt, x.shape, g.shape, out.shape)
    chunk = n_ // splits

    # Column (n, yx) of row o is g[n, o, yx]; chunk s starts at image s * chunk.
    grads = gemm.Rows(g.ptr, g.dtype, (chunk * o_ * ho * wo,), ho * wo,
                      gemm.Affine((chunk, ho * wo), ((o_ * ho * wo,), (1,))))
    rows = gemm.Affine((chunk, ho, wo), ((c_ * h * wd, 0, 0), (0, sh, 0), (0, 0, sw)),
                       (0, -ph, -pw))
    cols = gemm.Affine((c_, kh, kw), ((h * wd, 0, 0), (0, 1, 0), (0, 0, 1)))
    patches = gemm.Patches(x.ptr, x.dtype, x.size, (chunk * c_ * h * wd,), h, wd, rows, cols)
    b = k.b
    partials = out.ptr if splits == 1 else b.gep(scratch, [i64(at)], inbounds=True,
                                                  source_etype=I8)
    gm = gemm.Gemm((splits,), o_, ckk, chunk * ho * wo, dt, grads, patches, partials, ckk,
                   o_ * ckk)
    gemm.emit(k, gm, scratch)
    if splits == 1:
        return
    b.call(k.mc.barrier, [k.nthreads])  # every chunk's partial sums are written
    start, stop = k.split(o_ * ckk, 16)
    with k.loop(start, stop, "e") as e:
        total = k.load(partials, dt, e)
        for s_ in range(1, splits):
            total = b.fadd(total, k.load(partials, dt, b.add(e, i64(s_ * o_ * ckk))))
        k.store(total, out.ptr, dt, e)


# ----- the shifted path -------------------------------------------------------------------
def _up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


@functools.lru_cache(maxsize=64)
def _blocking(outputs: int, taps: int) -> tuple[int, int]:
    """(output channels, taps) of a register block. The cost of a block is its FMAs plus
    half its vector loads per pixel vector; the choice minimizes the cost of the whole
    outputs x taps grid on one thread plus that of the busier thread on two (threads
    split the blocks into contiguous ranges; these machines have two cores)."""
    def cost(ob: int, tb: int) -> float:
        sizes_o = np.minimum(ob, outputs - np.arange(0, outputs, ob))
        sizes_t = np.minimum(tb, taps - np.arange(0, taps, tb))
        items = (np.outer(sizes_o, sizes_t) + (sizes_o[:, None] + sizes_t[None, :]) / 2)
        items = items.ravel()
        half = -(-items.size // 2)
        return items.sum() + max(items[:half].sum(), items[half:].sum())

    shapes = [(ob, tb) for ob in range(1, min(MAX_BLOCK, outputs) + 1)
              for tb in range(1, min(MAX_BLOCK, taps) + 1) if ob * tb <= MAX_ACCUMULATORS]
    return min(shapes, key=lambda s: (cost(*s), -s[0] * s[1]))


@dataclass(frozen=True)
class _Shapes:
    """A stride-1 weight gradient's shapes: x (n, c, h, w), g (n, o, ho, wo), the kernel
    (kh, kw) and the padding (ph, pw)."""

    dtype: np.dtype
    n: int
    c: int
    h: int
    w: int
    o: int
    kh: int
    kw: int
    ph: int
    pw: int
    ho: int
    wo: int

    @staticmethod
    def values(dtype, x_shape, g_shape, kernel, padding) -> tuple:
        """The fields above, in order, from the op's shapes."""
        n_, c_, h, wd = x_shape
        _, o_, ho, wo = g_shape
        return (np.dtype(dtype), n_, c_, h, wd, o_, *kernel, *padding, ho, wo)

    @property
    def taps(self) -> int:
        return self.c * self.kh * self.kw


@dataclass(frozen=True)
class Shifted(_Shapes):
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
        ob, tb = _blocking(o_, c_ * kh * kw)
        # Half vectors where they waste fewer lanes on the last pixels (as fast on Zen 4).
        widest = VECTOR_BYTES // dtype.itemsize
        lanes = min((widest, widest // 2), key=lambda n: _up(ho * wo, n))
        per_image = (o_ * ho * wo + c_ * kw * (h + 2 * padding[0]) * wo) * dtype.itemsize
        steps = -(-ho * wo // lanes)
        chunk = min(n_, max(CHUNK_BYTES // per_image, -(-MIN_STEPS // steps)))
        return Shifted(*_Shapes.values(dtype, x_shape, g_shape, kernel, padding),
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
        return _up(planes + VECTOR_BYTES, VECTOR_BYTES)

    @property
    def block_bytes(self) -> int:
        return self.ob * self.tb * self.lanes * self.dtype.itemsize

    @property
    def end(self) -> int:
        """Scratch bytes (partial sums only when there is more than one chunk)."""
        kb, tb = self.blocks
        return self.partials + (kb * tb * self.block_bytes if self.chunks > 1 else 0)


def _shifted_grad_weight(k, p: Shifted, x, g, out, scratch) -> None:
    """Threads fill the shifted planes by (n, c), meet at a barrier, then split the grid of
    (output channel block, tap block); each gw element is summed by one thread in one
    order (per lane over chunks, images and pixels, then a shuffle tree), whatever the
    thread count."""
    _fill_shifted(k, p, x, scratch)
    b = k.b
    b.call(k.mc.barrier, [k.nthreads])  # blocks read planes other threads wrote
    kb, tb = p.blocks
    start, stop = k.split(kb * tb)
    with k.loop(0, p.chunks, "chunk") as chunk:
        with k.loop(start, stop, "block") as item:
            o0 = b.mul(b.udiv(item, i64(tb)), i64(p.ob))
            t0 = b.mul(b.urem(item, i64(tb)), i64(p.tb))
            block = _Block(k, p, g, out, scratch, chunk, item, o0, t0)
            _by_size(b, o0, p.ob, p.o, lambda o_here: _by_size(
                b, t0, p.tb, p.taps, lambda t_here: block.emit(o_here, t_here)))


def _by_size(b, first, block: int, total: int, emit) -> None:
    """emit(size) for the block starting at `first`: full, or the short last one."""
    if total % block == 0:
        emit(block)
        return
    with b.if_else(b.icmp_signed("<=", b.add(first, i64(block)), i64(total))) as (full, last):
        with full:
            emit(block)
        with last:
            emit(total % block)


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
        k, p, b = self.k, self.p, self.k.b
        t = llvm_type(p.dtype)
        vec = ir.VectorType(t, p.lanes)
        zero = ir.Constant(vec, [0.0] * p.lanes)
        accs = [[k.alloca(vec) for _ in range(tb)] for _ in range(ob)]
        partial = b.gep(self.scratch, [b.add(i64(p.partials), b.mul(self.item,
                                                                    i64(p.block_bytes)))],
                        source_etype=I8)

        def slot(o, tap):  # vector (o, tap) of this block's partial sums
            return b.gep(partial, [i64(o * tb + tap)], source_etype=vec)

        if p.chunks > 1:
            with b.if_else(b.icmp_signed("==", self.chunk, i64(0))) as (first, later):
                with first:
                    self._set(accs, lambda o, tap: zero)
                with later:
                    self._set(accs, lambda o, tap: b.load(slot(o, tap), typ=vec,
                                                           align=p.lanes * p.dtype.itemsize))
        else:
            self._set(accs, lambda o, tap: zero)
        self._images(accs, vec)
        if p.chunks > 1:
            last = b.icmp_signed("==", self.chunk, i64(p.chunks - 1))
            with b.if_else(last) as (done, more):
                with done:
                    self._finish(accs, vec)
                with more:
                    for o, row in enumerate(accs):
                        for tap, acc in enumerate(row):
                            b.store(b.load(acc, typ=vec), slot(o, tap),
                                    align=p.lanes * p.dtype.itemsize)
        else:
            self._finish(accs, vec)

    def _set(self, accs, value) -> None:
        """acc[o][tap] = value(o, tap)."""
        for o, row in enumerate(accs):
            for tap, acc in enumerate(row):
                self.k.b.store(value(o, tap), acc)

    def _images(self, accs, vec) -> None:
        """acc[o][tap] += g[n, o0 + o, q] * S[n, tap's plane][q + tap's row] per lane, over
        this chunk's images n and the pixels q in vectors (the last one masked)."""
        k, p, b = self.k, self.p, self.k.b
        ob, tb = len(accs), len(accs[0])
        t = llvm_type(p.dtype)
        suffix = _suffix(p.dtype)
        fma = k.mc.function(f"llvm.fma.v{p.lanes}{suffix}", vec, [vec] * 3)
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
                    masked = k.mc.function(f"llvm.masked.load.v{p.lanes}{suffix}.p0", vec,
                                           [PTR, I32, ir.VectorType(I1, p.lanes), vec])
                    return b.call(masked, [at, ir.Constant(I32, p.dtype.itemsize), mask,
                                           ir.Constant(vec, [0.0] * p.lanes)])

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

    def _finish(self, accs, vec) -> None:
        """gw[o0 + o, t0 + tap] = the lanes of acc[o][tap] summed by a shuffle tree."""
        k, p, b = self.k, self.p, self.k.b
        for o, row in enumerate(accs):
            at = b.add(b.mul(b.add(self.o0, i64(o)), i64(p.taps)), self.t0)
            for tap, acc in enumerate(row):
                k.store(_lane_sum(b, b.load(acc, typ=vec), p.lanes), self.out.ptr,
                        p.dtype, b.add(at, i64(tap)))


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
    with k.loop(start, stop, "plane") as nc:
        src_plane = b.mul(nc, i64(p.h * p.w))
        for j in range(p.kw):
            dst = b.mul(b.add(b.mul(nc, i64(p.kw)), i64(j)), i64(p.plane))
            _zeros(k, p, scratch, dst, p.ph * p.wo)  # the padding rows above
            _zeros(k, p, scratch, b.add(dst, i64((p.ph + p.h) * p.wo)), p.ph * p.wo)

            def row(iy, j=j, dst=dst):
                _shifted_row(k, p, x, scratch, b.add(dst, b.mul(b.add(iy, i64(p.ph)),
                                                                i64(p.wo))),
                             b.add(src_plane, b.add(b.mul(iy, i64(p.w)), i64(j - p.pw))), j)

            _repeat(k, p.h, row)


def _repeat(k, count: int, emit) -> None:
    """emit(i) for i in range(count): unrolled when short, a loop otherwise."""
    if count <= UNROLL:
        for i in range(count):
            emit(i64(i))
        return
    with k.loop(0, count, "r") as i:
        emit(i)


class _Vectors:
    """Widest vectors of a dtype, with their masked load and store."""

    def __init__(self, k, dtype: np.dtype):
        self.lanes = VECTOR_BYTES // dtype.itemsize
        self.t = llvm_type(dtype)
        self.vec, self.mask = ir.VectorType(self.t, self.lanes), ir.VectorType(I1, self.lanes)
        suffix = f"v{self.lanes}{_suffix(dtype)}.p0"
        self.load = k.mc.function(f"llvm.masked.load.{suffix}", self.vec,
                                  [PTR, I32, self.mask, self.vec])
        self.store = k.mc.function(f"llvm.masked.store.{suffix}", ir.VoidType(),
                                   [self.vec, PTR, I32, self.mask])
        self.align = ir.Constant(I32, dtype.itemsize)
        self.zero = ir.Constant(self.vec, [0.0] * self.lanes)

    def lanes_below(self, count: int) -> ir.Constant:
        return ir.Constant(self.mask, [lane < count for lane in range(self.lanes)])


def _zeros(k, p: Shifted, scratch, start, count: int) -> None:
    """scratch[start : start + count] = 0 (elements of p.dtype)."""
    v = _Vectors(k, p.dtype)
    b = k.b
    whole, rest = divmod(count, v.lanes)

    def store(i, mask):
        at = b.gep(scratch, [b.add(start, b.mul(i, i64(v.lanes)))], source_etype=v.t)
        b.call(v.store, [v.zero, at, v.align, mask])

    _repeat(k, whole, lambda i: store(i, v.lanes_below(v.lanes)))
    if rest:
        store(i64(whole), v.lanes_below(rest))


def _shifted_row(k, p: Shifted, x, scratch, dst, src, j: int) -> None:
    """One row of a shifted plane: scratch[dst + xx] = x[src + xx] for the output columns
    xx whose input column lies in the image, zero for the others. Masked-off lanes may
    address outside x: they are never accessed."""
    b = k.b
    v = _Vectors(k, p.dtype)
    lo, hi = column_range(j, p.w, p.wo, 1, p.pw)
    for first in range(0, p.wo, v.lanes):
        columns = range(first, first + v.lanes)
        inside = [lo <= xx < hi for xx in columns]
        value = v.zero
        if any(inside):
            at = b.gep(x.ptr, [b.add(src, i64(first))], source_etype=v.t)  # not inbounds
            value = b.call(v.load, [at, v.align, ir.Constant(v.mask, inside), v.zero])
        at = b.gep(scratch, [b.add(dst, i64(first))], source_etype=v.t)
        b.call(v.store, [value, at, v.align, v.lanes_below(p.wo - first)])


# ----- the channels path ------------------------------------------------------------------
@dataclass(frozen=True)
class Channels(_Shapes):
    """The channels path: g transposed to gT[n, q, o] (output channels padded to whole
    vectors), then per (vector group of output channels, input channel) a register block
    acc[tap][vector] += gT[n, q, vector] * x[n, c, q's input pixel for tap], over the
    images and, unrolled, the (pixel, tap) pairs that read inside the image."""

    group: int  # output channel vectors per block

    @staticmethod
    def of(dtype, x_shape, g_shape, kernel, padding) -> Channels:
        vectors = -(-g_shape[1] // (VECTOR_BYTES // np.dtype(dtype).itemsize))
        kh, kw = kernel
        return Channels(*_Shapes.values(dtype, x_shape, g_shape, kernel, padding),
                        min(vectors, MAX_ACCUMULATORS // (kh * kw)))

    @property
    def lanes(self) -> int:
        return VECTOR_BYTES // self.dtype.itemsize

    @property
    def vectors(self) -> int:
        """Vectors of output channels (the last one padded with zeros)."""
        return -(-self.o // self.lanes)

    @property
    def end(self) -> int:
        """Scratch bytes: gT."""
        return self.n * self.ho * self.wo * self.vectors * VECTOR_BYTES


def _channels_grad_weight(k, p: Channels, x, g, out, scratch) -> None:
    """Threads transpose g by images, meet at a barrier, then split the blocks; each gw
    element is summed by one thread over images, then pixels, whatever the thread count."""
    _transpose_grads(k, p, g, scratch)
    b = k.b
    b.call(k.mc.barrier, [k.nthreads])  # blocks read gT rows other threads wrote
    groups = -(-p.vectors // p.group)
    start, stop = k.split(groups * p.c)
    with k.loop(start, stop, "block") as item:
        first = b.mul(b.udiv(item, i64(p.c)), i64(p.group))
        c = b.urem(item, i64(p.c))
        _by_size(b, first, p.group, p.vectors,
                 lambda vectors: _channel_block(k, p, x, out, scratch, first, c, vectors))


def _transpose_grads(k, p: Channels, g, scratch) -> None:
    """gT[n, q, o] = g[n, o, q], zero for the padding channels o >= O: per image and
    vector of output channels, one masked load per channel and a shuffle transpose."""
    b = k.b
    v = _Vectors(k, p.dtype)
    pixels = p.ho * p.wo
    width = p.vectors * v.lanes
    none = ir.Constant(v.mask, [0] * v.lanes)
    start, stop = k.split(p.n)
    with k.loop(start, stop, "n") as n:
        with k.loop(0, p.vectors, "ov") as vector:
            rows = []
            for lane in range(v.lanes):
                o = b.add(b.mul(vector, i64(v.lanes)), i64(lane))
                inside = b.icmp_signed("<", o, i64(p.o))
                at = b.select(inside, b.mul(b.add(b.mul(n, i64(p.o)), o), i64(pixels)), i64(0))
                rows.append(b.call(v.load, [b.gep(g.ptr, [at], source_etype=v.t), v.align,
                                            b.select(inside, v.lanes_below(pixels), none),
                                            v.zero]))
            base = b.add(b.mul(n, i64(pixels * width)), b.mul(vector, i64(v.lanes)))
            for q, column in enumerate(gemm_transpose(b, rows)[:pixels]):
                at = b.gep(scratch, [b.add(base, i64(q * width))], source_etype=v.t)
                b.store(column, at, align=VECTOR_BYTES)


def _channel_block(k, p: Channels, x, out, scratch, first, c, vectors: int) -> None:
    """gw[o, c, tap] for the output channel vectors first.. (`vectors` of them)."""
    b = k.b
    v = _Vectors(k, p.dtype)
    fma = k.mc.function(f"llvm.fma.v{v.lanes}{_suffix(p.dtype)}", v.vec, [v.vec] * 3)
    taps = p.kh * p.kw
    pixels = p.ho * p.wo
    width = p.vectors * v.lanes
    accs = [[k.alloca(v.vec) for _ in range(vectors)] for _ in range(taps)]
    for row in accs:
        for acc in row:
            b.store(v.zero, acc)
    with k.loop(0, p.n, "n") as n:
        image = b.mul(b.add(b.mul(n, i64(p.c)), c), i64(p.h * p.w))
        grads = b.add(b.mul(n, i64(pixels * width)), b.mul(first, i64(v.lanes)))
        for q in range(pixels):
            y, xx = divmod(q, p.wo)
            gv = [b.load(b.gep(scratch, [b.add(grads, i64(q * width + u * v.lanes))],
                               source_etype=v.t), typ=v.vec, align=VECTOR_BYTES)
                  for u in range(vectors)]
            for tap in range(taps):
                iy, ix = y + tap // p.kw - p.ph, xx + tap % p.kw - p.pw
                if not (0 <= iy < p.h and 0 <= ix < p.w):
                    continue  # padding: a zero product
                value = k.load(x.ptr, p.dtype, b.add(image, i64(iy * p.w + ix)))
                splat = b.shuffle_vector(
                    b.insert_element(ir.Constant(v.vec, ir.Undefined), value, ir.Constant(I32, 0)),
                    ir.Constant(v.vec, ir.Undefined), ir.Constant(ir.VectorType(I32, v.lanes),
                                                                  [0] * v.lanes))
                for u in range(vectors):
                    acc = accs[tap][u]
                    b.store(b.call(fma, [gv[u], splat, b.load(acc, typ=v.vec)]), acc)
    # Through a stack tile, so the output channels past O (padding) are one loop bound.
    tile = k.alloca(ir.ArrayType(v.vec, taps * vectors))
    for tap, row in enumerate(accs):
        for u, acc in enumerate(row):
            b.store(b.load(acc, typ=v.vec), b.gep(tile, [i64(0), i64(u * taps + tap)]))
    o0 = b.mul(first, i64(v.lanes))
    count = b.sub(i64(p.o), o0)
    count = b.select(b.icmp_signed("<", count, i64(vectors * v.lanes)), count,
                     i64(vectors * v.lanes))
    with k.loop(0, count, "o") as o:
        u, lane = b.udiv(o, i64(v.lanes)), b.urem(o, i64(v.lanes))
        at = b.mul(b.add(b.mul(b.add(o0, o), i64(p.c)), c), i64(taps))
        for tap in range(taps):
            vector = b.load(b.gep(tile, [i64(0), b.add(b.mul(u, i64(taps)), i64(tap))]))
            k.store(b.extract_element(vector, lane), out.ptr, p.dtype, b.add(at, i64(tap)))


def _suffix(dtype: np.dtype) -> str:
    return "f32" if dtype == np.float32 else "f64"
