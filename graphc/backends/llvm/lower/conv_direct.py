"""Direct stride-1 convolutions: the forward convolution and the input gradient of small
convolutions, where packing image patches for the GEMM costs more than the arithmetic.

Each image n is copied into per-thread scratch as zero-padded planes (hp x wp, a row's
right padding shared with the next row's left; slack after each plane so vector loads
never leave the buffer). Two register-blocked variants then run over the taps (c, ky, kx)
in that order, kernel rows that meet only padding skipped:
- "positions": vectors over the flattened plane, output position j = y * wp + x
  (columns x >= wo are junk, computed and dropped), a 1-D convolution with contiguous
  unaligned loads, out[k, j] = sum of w(k, c, ky, kx) * P[c, j + ky * wp + kx], the
  weights broadcast; blocks go to a per-thread tile whose valid columns are copied out.
  No waste across output channels: for few channels (LeNet's first layer, 6).
- "channels": vectors over output channels (weights packed channel-innermost per
  thread), the image values broadcast, blocks of whole output rows (or row segments);
  16 x 16 blocks are transposed in registers and stored as contiguous pixels of each
  channel's plane. No junk positions: for small planes and channel counts near a
  multiple of the vector width.
A cost model in cycles per tap picks the variant and block sizes. Threads split
(image, block of output channels) items; each output element sums its terms in one fixed
order within one item, so results do not depend on the thread count. The input gradient
is the same kernel on g, padded by kernel - 1 - padding, with the flipped kernel and the
channel roles swapped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I1, I8, I32, VOID, const, convert, i64, llvm_type
from graphc.backends.llvm.codegen.kernel import Kernel
from graphc.backends.llvm.gemm import transpose

VECTOR_BYTES = 64  # one zmm register
ACCUMULATORS = 24  # vector accumulators of a register block (of 32 zmm registers)
SLOTS = 8  # per-thread scratch regions; threads beyond them sit out
MAX_SLOT_BYTES = 512 * 1024  # one thread's padded image and tile or weights stay in L2
MAX_DEPTH = 400  # terms per output (cin x kh x kw) up to which the direct kernel is taken
MAX_GRAD_DEPTH = 600  # the same for input gradients (see suits)
MAX_PLANE = 256  # output pixels up to which the direct kernel is taken
FEW_TAPS, MANY_CHANNELS = 32, 32  # where the GEMM's tiles are full and its packing cheap
MAX_KW = 16  # the widest kernel taken (blocks once unrolled its columns; wider ones: GEMM)
FMA_CHAINS = 8  # independent accumulators that keep the FMA pipes busy (latency x width)
BLOCK_OVERHEAD = 2  # cycles per tap of a block beyond its FMAs (address arithmetic, loop)
STORE_CYCLES = 2  # cycles per output vector stored (positions: copied out of the tile)
TRANSPOSE_CYCLES = 5  # cycles per vector of a register transpose (shuffles and a store)
CHANNEL_GROUPS = 3  # the most channel vectors one "channels" item accumulates
MIN_ITEMS = 8  # fewer (image, channel block) items than this are split into row bands


def _cycles(accumulators: int, loads: int) -> float:
    """Estimated cycles of one kernel tap of a register block: its FMAs (one vector FMA
    a cycle), at least FMA_CHAINS of them (latency), its loads at two a cycle, and a
    fixed overhead."""
    return max(accumulators, FMA_CHAINS, loads / 2) + BLOCK_OVERHEAD


def _balanced(total: int, most: int) -> list[int]:
    """total split into the fewest parts of at most `most`, as equal as possible, larger
    parts first (their sizes are compile-time constants)."""
    count = -(-total // most)
    size = -(-total // count)
    return [size] * (count - 1) + [total - size * (count - 1)]


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
        """Elements of whole vectors covering a plane's output positions."""
        return self.vectors * self.lanes

    @property
    def tile_plane(self) -> int:
        """Elements of one tile plane: the vectors of a band of rows (whole vectors from
        the band's first row, so a band may need one vector past `row`)."""
        return self.row + self.lanes

    @property
    def plane(self) -> int:
        """Elements of one padded image plane in scratch, with the slack the last vector's
        farthest tap reads."""
        return _up(self.tile_plane + (self.kh - 1) * self.wp + self.kw - 1, self.lanes)

    @property
    def taps(self) -> int:
        return self.cin * self.kh * self.kw

    def active_rows(self, y0: int, y1: int) -> int:
        """Kernel rows a block of output rows [y0, y1] runs (see _kernel_rows)."""
        return max(0, min(self.kh, self.ph + self.h - y0) - max(0, self.ph - y1))

    @property
    def positions_blocks(self) -> tuple[float, int, int]:
        return _positions_model(self)

    def _positions_blocks(self) -> tuple[float, int, int]:
        """(estimated cycles per image, R vectors, kb channels) of the best "positions"
        register block; channel blocks are balanced, the vectors left at a plane's end
        form a smaller last block (ties: fewer loads)."""
        best = None
        for r in range(1, min(self.vectors, ACCUMULATORS) + 1):
            sizes = _balanced(self.cout, ACCUMULATORS // r)
            per_tap = {v: sum(_cycles(v * kb, v + kb) for kb in sizes)
                       for v in {r, self.vectors % r or r}}
            cost = self.cout * self.vectors * STORE_CYCLES
            for j in range(0, self.vectors, r):
                vectors = min(r, self.vectors - j)
                y0 = j * self.lanes // self.wp
                y1 = min((j + vectors) * self.lanes - 1, self.ho * self.wp - 1) // self.wp
                cost += per_tap[vectors] * self.cin * self.kw * self.active_rows(y0, y1)
            best = min(best or (cost, r + sizes[0], r, sizes[0]), (cost, r + sizes[0], r,
                                                                    sizes[0]))
        return best[0], best[2], best[3]

    @property
    def channel_vectors(self) -> int:
        return -(-self.cout // self.lanes)

    @property
    def channel_blocks(self) -> tuple[float, int, int, int]:
        return _channels_model(self)

    def _channel_blocks(self) -> tuple[float, int, int, int]:
        """(estimated cycles per image, G channel vectors per item, m rows, s columns) of
        the best "channels" register block: m whole rows (s = wo) when a row fits,
        else row segments of s pixels (m = 1); G * m * s accumulators at most."""
        best = None
        for g in range(1, min(self.channel_vectors, CHANNEL_GROUPS) + 1):
            most = ACCUMULATORS // g
            if self.wo <= most:
                m, s = min(self.ho, most // self.wo), self.wo
                blocks, y0 = [], 0  # (pixels, active kernel rows)
                for rows in _balanced(self.ho, m):
                    blocks.append((rows * s, self.active_rows(y0, y0 + rows - 1)))
                    y0 += rows
            else:
                m, s = 1, _balanced(self.wo, most)[0]
                blocks = [(pixels, self.active_rows(y, y)) for y in range(self.ho)
                          for pixels in _balanced(self.wo, most)]
            cost = 0
            for vectors in _balanced(self.channel_vectors, g):
                for pixels, rows in blocks:
                    taps = self.cin * self.kw * rows
                    cost += _cycles(vectors * pixels, vectors + pixels) * taps
                    cost += vectors * -(-pixels // self.lanes) * self.lanes * TRANSPOSE_CYCLES
            best = min(best or (cost, g, m, s), (cost, g, m, s))
        return best

    @property
    def variant(self) -> str:
        """"positions" or "channels", whichever the cost model expects to be faster."""
        if self.channel_blocks[0] < self.positions_blocks[0]:
            return "channels"
        return "positions"

    @property
    def second_offset(self) -> int:
        """Byte offset, in a thread's scratch, of the tile ("positions") or the packed
        weights ("channels") after the padded planes."""
        return _up(self.cin * self.plane * np.dtype(self.dtype).itemsize, VECTOR_BYTES)

    @property
    def slot_bytes(self) -> int:
        """One thread's scratch: padded image planes, then the tile or packed weights."""
        if self.variant == "positions":
            second = self.positions_blocks[2] * self.tile_plane
        else:
            second = self.taps * self.channel_vectors * self.lanes
        return self.second_offset + _up(second * np.dtype(self.dtype).itemsize, VECTOR_BYTES)

    @property
    def scratch_bytes(self) -> int:
        return SLOTS * self.slot_bytes


@functools.lru_cache(maxsize=256)
def _positions_model(conv: Direct) -> tuple[float, int, int]:
    return conv._positions_blocks()  # cached: the rule, the scratch and the kernel ask


@functools.lru_cache(maxsize=256)
def _channels_model(conv: Direct) -> tuple[float, int, int, int]:
    return conv._channel_blocks()


def suits(conv: Direct) -> bool:
    """Whether the direct kernel is the better path (float dtypes, a thread's scratch
    within MAX_SLOT_BYTES, at most MAX_KW kernel columns). Small convolutions take it:
    few terms per output (cin * kh * kw <= MAX_DEPTH) or small output planes
    (ho * wo <= MAX_PLANE), where the GEMM packs patches for little arithmetic or fills
    few of its 8 x 32 tiles (LeNet and digits layers: 2.5-4x faster). Exception: large
    planes with few terms and many output channels (CIFAR's first layer, 3x3x3 -> 64
    channels on 32 x 32: GEMM 92, direct 80 GFLOP/s). Large convolutions keep the GEMM
    for the forward pass (the 64-channel 32 x 32 3x3 of the benchmarks: 24 ms on the GEMM,
    33 ms direct), while input gradients take the direct kernel up to MAX_GRAD_DEPTH terms
    (there the GEMM packs patches of the gradient: the same layer's backward pass took
    47.5-48.7 ms instead of 50.5 at 1 thread, 24.6-24.8 instead of 25.4-25.6 at 2)."""
    depth = MAX_GRAD_DEPTH if conv.flipped else MAX_DEPTH
    small = conv.taps <= depth or conv.ho * conv.wo <= MAX_PLANE
    gemm_shaped = (conv.taps < FEW_TAPS and conv.cout >= MANY_CHANNELS
                   and conv.ho * conv.wo > MAX_PLANE)
    fits = (conv.ho > 0 and conv.wo > 0 and conv.kw <= MAX_KW
            and conv.second_offset <= MAX_SLOT_BYTES and conv.slot_bytes <= MAX_SLOT_BYTES)
    return np.dtype(conv.dtype).kind == "f" and small and not gemm_shaped and fits


def emit(k: Kernel, conv: Direct, image, weight, out, scratch, epilogue=None,
         nonfinite=None) -> None:
    """The calling thread's share of out (n, cout, ho, wo); epilogue(n, k0, k1, q0, q1)
    runs on each finished block: output planes [k0, k1) of image n, flat pixels
    [q0, q1). With weights that are not all finite, `nonfinite()` runs instead if given
    (a reference-exact path: the input gradient must not multiply padding), else the
    kernel runs every kernel row."""
    if conv.n * conv.cout * conv.ho * conv.wo == 0:
        return
    assert np.dtype(out.dtype) == np.dtype(conv.dtype), (out.dtype, conv.dtype)
    b = k.b
    finite = weights_finite(k, weight, conv.cout * conv.taps)
    if nonfinite is not None:
        with b.if_else(finite) as (direct, exact):
            with direct:
                _emit_items(k, conv, image, weight, out, scratch, epilogue, finite)
            with exact:
                nonfinite()
    else:
        _emit_items(k, conv, image, weight, out, scratch, epilogue, finite)


def _emit_items(k: Kernel, conv: Direct, image, weight, out, scratch, epilogue,
                skip) -> None:
    """The thread's items (image, block of output channels, band of rows)."""
    b = k.b
    if conv.variant == "positions":
        _, r, per_item = conv.positions_blocks
    else:
        _, groups, block_rows, block_cols = conv.channel_blocks
        per_item = groups * conv.lanes
    k_blocks = -(-conv.cout // per_item)
    tail = conv.cout - (k_blocks - 1) * per_item
    # Few images (inference): bands of output rows are items too, so threads share them.
    bands = min(conv.ho, -(-MIN_ITEMS // (conv.n * k_blocks)))
    band_rows = _balanced(conv.ho, -(-conv.ho // bands))
    bands = len(band_rows)
    workers = _smin(b, k.nthreads, i64(SLOTS))
    with k.when(b.icmp_signed("<", k.tid, workers)):
        slot = b.gep(scratch, [b.mul(k.tid, i64(conv.slot_bytes))], source_etype=I8)
        padded = slot
        second = b.gep(slot, [i64(conv.second_offset)], source_etype=I8)
        _fill_zero(k, padded, conv.dtype, conv.cin * conv.plane)
        if conv.variant == "channels":
            _pack_weights(k, conv, weight, second)

        def item_body(n, k0, count, y0, rows):
            if conv.variant == "positions":
                _planes(k, conv, weight, padded, second, k0, r, count, y0, rows, skip)
                _copy_out(k, conv, second, out, n, k0, count, y0, rows)
            else:
                _channel_planes(k, conv, second, padded, out, n, k0, count, block_rows,
                                block_cols, y0, rows, skip)

        def cases(value, last: int, sizes: tuple[int, int], emit_case) -> None:
            """emit_case(size) for the value's block size: sizes[0] below `last`, else
            sizes[1] (one case when they agree)."""
            if sizes[0] == sizes[1]:
                emit_case(sizes[0])
                return
            with b.if_else(b.icmp_signed("<", value, i64(last))) as (most, final):
                with most:
                    emit_case(sizes[0])
                with final:
                    emit_case(sizes[1])

        items = conv.n * k_blocks * bands
        chunk = b.sdiv(b.add(i64(items), b.sub(workers, i64(1))), workers)
        start = _smin(b, b.mul(k.tid, chunk), i64(items))
        stop = _smin(b, b.add(start, chunk), i64(items))
        with k.loop(start, stop, "item") as item:
            n = b.udiv(item, i64(k_blocks * bands))
            block = b.urem(b.udiv(item, i64(bands)), i64(k_blocks))
            band = b.urem(item, i64(bands))
            # Items run n-major: pad image n on a thread's first item and when n changes.
            first_of_n = b.icmp_signed("==", b.urem(item, i64(k_blocks * bands)), i64(0))
            with k.when(b.or_(b.icmp_signed("==", item, start), first_of_n)):
                _pad(k, conv, image, n, padded)
            k0 = b.mul(block, i64(per_item))
            y0 = b.mul(band, i64(band_rows[0]))
            cases(block, k_blocks - 1, (per_item, tail), lambda count: cases(
                band, bands - 1, (band_rows[0], band_rows[-1]),
                lambda rows: item_body(n, k0, count, y0, rows)))
            if epilogue is not None:
                k1 = _smin(b, b.add(k0, i64(per_item)), i64(conv.cout))
                y1 = _smin(b, b.add(y0, i64(band_rows[0])), i64(conv.ho))
                epilogue(n, k0, k1, b.mul(y0, i64(conv.wo)), b.mul(y1, i64(conv.wo)))


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
            _copy_row(k, image.ptr, image.dtype, src, padded, dt, dst, conv.w)


def _planes(k: Kernel, conv: Direct, weight, padded, tile, k0, r: int, kb: int, y0,
            rows: int, skip) -> None:
    """Tile planes 0..kb of output channels k0.. for the output rows [y0, y0 + rows),
    positions from y0 * wp on: blocks of r vectors, then one of the remaining vectors."""
    b = k.b
    base = b.mul(y0, i64(conv.wp))
    full, rest = divmod(-(-rows * conv.wp // conv.lanes), r)
    with k.loop(0, full, "jb") as jb:
        _block(k, conv, weight, padded, tile, k0, base, b.mul(jb, i64(r * conv.lanes)), r, kb,
               skip)
    if rest:
        _block(k, conv, weight, padded, tile, k0, base, i64(full * r * conv.lanes), rest, kb,
               skip)


def _block(k: Kernel, conv: Direct, weight, padded, tile, k0, base, offset, r: int,
           kb: int, skip) -> None:
    """One register block: r vectors of positions from j0 = base + offset times kb
    channels from k0, summed over (c, ky, kx) in that order, stored into the tile at
    offset."""
    b = k.b
    dt, lanes, vec, fma = _vector_fma(k, conv)
    size = dt.itemsize
    zero = ir.Constant(vec, None)
    slots = [[k.alloca(vec) for _ in range(r)] for _ in range(kb)]
    for row in slots:
        for slot in row:
            b.store(zero, slot)
    tap0, dky, dkx = ((conv.kh * conv.kw - 1, -conv.kw, -1) if conv.flipped
                      else (0, conv.kw, 1))
    w_block = b.add(b.mul(k0, i64(conv.k_stride)), i64(tap0))
    j0 = b.add(base, offset)
    y1 = _smin(b, b.udiv(b.add(j0, i64(r * lanes - 1)), i64(conv.wp)), i64(conv.ho - 1))
    first, last = _kernel_rows(b, conv, b.udiv(j0, i64(conv.wp)), y1, skip)
    with k.loop(0, conv.cin, "c") as c:
        p_c = b.add(b.mul(c, i64(conv.plane)), j0)
        w_c = b.add(w_block, b.mul(c, i64(conv.c_stride)))
        with k.loop(first, last, "ky") as ky, k.loop(0, conv.kw, "kx") as kx:
            p_tap = b.add(b.add(p_c, b.mul(ky, i64(conv.wp))), kx)
            w_tap = b.add(b.add(w_c, b.mul(ky, i64(dky))), b.mul(kx, i64(dkx)))
            accs = [[b.load(slot, typ=vec) for slot in row] for row in slots]
            xs = [b.load(k.gep(padded, dt, b.add(p_tap, i64(v * lanes))), typ=vec,
                         align=size) for v in range(r)]
            for kk in range(kb):
                at = b.add(w_tap, i64(kk * conv.k_stride))
                scalar = convert(b, k.load(weight.ptr, weight.dtype, at), weight.dtype, dt)
                w_splat = _splat(b, scalar, vec)
                accs[kk] = [b.call(fma, [w_splat, xs[v], accs[kk][v]]) for v in range(r)]
            for row, values in zip(slots, accs):
                for slot, value in zip(row, values):
                    b.store(value, slot)
    for kk, row in enumerate(slots):
        for v, slot in enumerate(row):
            at = b.add(offset, i64(kk * conv.tile_plane + v * lanes))
            b.store(b.load(slot, typ=vec), k.gep(tile, dt, at), align=size)


def _copy_out(k: Kernel, conv: Direct, tile, out, n, k0, kb: int, y0, rows: int) -> None:
    """out[n, k0 + kk, y0 + y, x] = tile[kk, y * wp + x] for the rows of the band and the
    valid columns x < wo."""
    b = k.b
    dt = conv.dtype
    with k.loop(0, kb, "ok") as kk:
        plane = b.mul(b.add(b.mul(n, i64(conv.cout)), b.add(k0, kk)), i64(conv.ho * conv.wo))
        src_plane = b.mul(kk, i64(conv.tile_plane))
        with k.loop(0, rows, "oy") as y:
            dst = b.add(plane, b.mul(b.add(y0, y), i64(conv.wo)))
            src = b.add(src_plane, b.mul(y, i64(conv.wp)))
            _copy_row(k, tile, dt, src, out.ptr, out.dtype, dst, conv.wo)


def _copy_row(k: Kernel, src, src_dtype, src_at, dst, dst_dtype, dst_at, count: int) -> None:
    """dst[dst_at + i] = src[src_at + i] for i < count: whole vectors and one masked
    vector (rows here are often shorter than the loop vectorizer's minimum)."""
    b = k.b
    if np.dtype(src_dtype) != np.dtype(dst_dtype):
        with k.loop(0, count, "copy") as i:
            value = k.load(src, src_dtype, b.add(src_at, i))
            k.store(convert(b, value, src_dtype, dst_dtype), dst, dst_dtype, b.add(dst_at, i))
        return
    dt = np.dtype(src_dtype)
    lanes = VECTOR_BYTES // dt.itemsize
    vec = ir.VectorType(llvm_type(dt), lanes)
    mask_type = ir.VectorType(I1, lanes)
    load = k.mc.function(f"llvm.masked.load.v{lanes}{_suffix(dt)}.p0", vec,
                         [ir.PointerType(), I32, mask_type, vec])
    store = k.mc.function(f"llvm.masked.store.v{lanes}{_suffix(dt)}.p0", VOID,
                          [vec, ir.PointerType(), I32, mask_type])
    align = ir.Constant(I32, dt.itemsize)

    def copy(start, n: int) -> None:
        at_src = k.gep(src, dt, b.add(src_at, start))
        at_dst = k.gep(dst, dt, b.add(dst_at, start))
        if n == lanes:
            b.store(b.load(at_src, typ=vec, align=dt.itemsize), at_dst, align=dt.itemsize)
        else:
            mask = ir.Constant(mask_type, [int(i < n) for i in range(lanes)])
            values = b.call(load, [at_src, align, mask, ir.Constant(vec, ir.Undefined)])
            b.call(store, [values, at_dst, align, mask])

    full, rest = divmod(count, lanes)
    if full > 2:
        with k.loop(0, full, "copy") as v:
            copy(b.mul(v, i64(lanes)), lanes)
    else:
        for v in range(full):
            copy(i64(v * lanes), lanes)
    if rest:
        copy(i64(full * lanes), rest)


# ----- the "channels" variant ------------------------------------------------------------
def _pack_weights(k: Kernel, conv: Direct, weight, packed) -> None:
    """packed[((c * kh + ky) * kw + kx) * KP + o] = w(o, c, ky, kx), zero for o >= cout
    (KP: the output channels rounded up to whole vectors)."""
    b = k.b
    dt = conv.dtype
    kp = conv.channel_vectors * conv.lanes
    _fill_zero(k, packed, dt, conv.taps * kp)
    tap0, dky, dkx = ((conv.kh * conv.kw - 1, -conv.kw, -1) if conv.flipped
                      else (0, conv.kw, 1))
    with (k.loop(0, conv.cin, "wc") as c, k.loop(0, conv.kh, "wy") as ky,
          k.loop(0, conv.kw, "wx") as kx):
        src = b.add(b.add(b.mul(c, i64(conv.c_stride)), b.mul(ky, i64(dky))),
                    b.add(i64(tap0), b.mul(kx, i64(dkx))))
        dst = b.mul(b.add(b.mul(b.add(b.mul(c, i64(conv.kh)), ky), i64(conv.kw)), kx), i64(kp))
        with k.loop(0, conv.cout, "wo") as o:
            value = k.load(weight.ptr, weight.dtype, b.add(src, b.mul(o, i64(conv.k_stride))))
            k.store(convert(b, value, weight.dtype, dt), packed, dt, b.add(dst, o))


def _channel_planes(k: Kernel, conv: Direct, packed, padded, out, n, k0, channels: int,
                    rows: int, cols: int, y0, band: int, skip) -> None:
    """Output planes k0 .. k0 + channels (at most cout) of image n, rows [y0, y0 + band):
    blocks of `rows` whole rows, or (rows == 1) row segments of `cols` pixels."""
    def run(total: int, most: int, body) -> None:
        """body(start, size) over _balanced parts of range(total): equal parts in a loop,
        a smaller last part on its own."""
        parts = _balanced(total, most)
        same = len(parts) if parts[-1] == parts[0] else len(parts) - 1
        with k.loop(0, same, "part") as i:
            body(k.b.mul(i, i64(parts[0])), parts[0])
        if same < len(parts):
            body(i64(same * parts[0]), parts[-1])

    def block(y, x0, m, s):
        _channel_block(k, conv, packed, padded, out, n, k0, channels, y, x0, m, s, skip)

    if cols == conv.wo:
        run(band, rows, lambda y, m: block(k.b.add(y0, y), i64(0), m, cols))
    else:
        with k.loop(y0, k.b.add(y0, i64(band)), "cy") as y:
            run(conv.wo, cols, lambda x0, s: block(y, x0, 1, s))


def _channel_block(k: Kernel, conv: Direct, packed, padded, out, n, k0, channels: int,
                   y0, x0, m: int, s: int, skip) -> None:
    """One register block: output channels k0 .. k0 + channels (whole vectors of them)
    times the m x s pixels from (y0, x0), summed over (c, ky, kx) in that order; transposed
    in registers into pixel vectors of each channel and stored (the pixels are contiguous
    in out)."""
    b = k.b
    dt, lanes, vec, fma = _vector_fma(k, conv)
    vectors = -(-channels // lanes)
    size = dt.itemsize
    kp = conv.channel_vectors * lanes
    pixels = [(dy, dx) for dy in range(m) for dx in range(s)]
    slots = [[k.alloca(vec) for _ in range(vectors)] for _ in pixels]
    zero = ir.Constant(vec, None)
    for row in slots:
        for slot in row:
            b.store(zero, slot)
    first, last = _kernel_rows(b, conv, y0, b.add(y0, i64(m - 1)), skip)
    with k.loop(0, conv.cin, "c") as c:
        p_c = b.add(b.mul(c, i64(conv.plane)), b.add(b.mul(y0, i64(conv.wp)), x0))
        w_c = b.add(b.mul(c, i64(conv.kh * conv.kw * kp)), k0)
        with k.loop(first, last, "ky") as ky, k.loop(0, conv.kw, "kx") as kx:
            p_tap = b.add(b.add(p_c, b.mul(ky, i64(conv.wp))), kx)
            w_tap = b.add(w_c, b.mul(b.add(b.mul(ky, i64(conv.kw)), kx), i64(kp)))
            accs = [[b.load(slot, typ=vec) for slot in row] for row in slots]
            ws = [b.load(k.gep(packed, dt, b.add(w_tap, i64(g * lanes))), typ=vec,
                         align=size) for g in range(vectors)]
            for p, (dy, dx) in enumerate(pixels):
                x = _splat(b, k.load(padded, dt, b.add(p_tap, i64(dy * conv.wp + dx))), vec)
                accs[p] = [b.call(fma, [ws[g], x, accs[p][g]]) for g in range(vectors)]
            for row, values in zip(slots, accs):
                for slot, value in zip(row, values):
                    b.store(value, slot)
    store = k.mc.function(f"llvm.masked.store.v{lanes}{_suffix(dt)}.p0", VOID,
                          [vec, ir.PointerType(), I32, ir.VectorType(I1, lanes)])
    first_pixel = b.add(b.mul(y0, i64(conv.wo)), x0)
    for g in range(vectors):
        for start in range(0, len(pixels), lanes):
            count = min(lanes, len(pixels) - start)
            values = [b.load(slots[p][g], typ=vec) for p in range(start, start + count)]
            columns = transpose(b, values + [zero] * (lanes - count))
            for c, values in enumerate(columns[:channels - g * lanes]):
                channel = b.add(k0, i64(g * lanes + c))
                plane = b.mul(b.add(b.mul(n, i64(conv.cout)), channel), i64(conv.ho * conv.wo))
                ptr = k.gep(out.ptr, dt, b.add(plane, b.add(first_pixel, i64(start))))
                if count == lanes:
                    b.store(values, ptr, align=size)
                else:
                    mask = ir.Constant(ir.VectorType(I1, lanes),
                                       [int(i < count) for i in range(lanes)])
                    b.call(store, [values, ptr, ir.Constant(I32, size), mask])


def _kernel_rows(b, conv: Direct, y0, y1, skip) -> tuple:
    """[first, last): with `skip` (the weights are finite), the kernel rows that meet
    image rows for some output row in [y0, y1]; the others add only zeros from the
    padding (the input gradient pads by kernel - 1 - padding). Without it, all rows:
    a weight's inf or NaN times the padding gives NaN, as in the reference."""
    first = _smax(b, b.sub(i64(conv.ph), y1), i64(0))
    last = _smin(b, b.sub(i64(conv.ph + conv.h), y0), i64(conv.kh))
    return b.select(skip, first, i64(0)), b.select(skip, last, i64(conv.kh))


def weights_finite(k: Kernel, weight, count: int):
    """i1: whether the first `count` weights are all finite (no inf, no NaN)."""
    b = k.b
    t = llvm_type(weight.dtype)
    fabs = k.mc.intrinsic("fabs", t)
    flag = k.alloca(I1)
    b.store(ir.Constant(I1, 1), flag)
    with k.loop(0, count, "finite") as i:
        ok = b.fcmp_ordered("<", b.call(fabs, [k.load(weight.ptr, weight.dtype, i)]),
                            ir.Constant(t, float("inf")))
        b.store(b.and_(b.load(flag, typ=I1), ok), flag)
    return b.load(flag, typ=I1)


def _vector_fma(k: Kernel, conv: Direct) -> tuple:
    """(dtype, lanes, vector type, the vector llvm.fma) of a convolution's blocks."""
    dt = np.dtype(conv.dtype)
    vec = ir.VectorType(llvm_type(dt), conv.lanes)
    return dt, conv.lanes, vec, k.mc.function(f"llvm.fma.v{conv.lanes}{_suffix(dt)}", vec,
                                              [vec] * 3)


def _splat(b, scalar, vec: ir.VectorType):
    one = b.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(I32, 0))
    # An all-zero mask as zeroinitializer: no constant object per lane (IR building time).
    return b.shuffle_vector(one, ir.Constant(vec, ir.Undefined),
                            ir.Constant(ir.VectorType(I32, vec.count), None))


def _suffix(dtype: np.dtype) -> str:
    return "f32" if np.dtype(dtype).itemsize == 4 else "f64"
