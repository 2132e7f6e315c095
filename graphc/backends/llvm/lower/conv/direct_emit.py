"""The direct convolution's kernel (direct_plan.py describes it and its cost model): each
image copied into per-thread scratch as zero-padded planes, then register blocks over the
taps, in the "positions" or the "channels" variant."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.arith import smax, smin
from graphc.backends.llvm.codegen.irtypes import I1, I8, I32, const, convert, i64, llvm_type
from graphc.backends.llvm.codegen.kernel import Kernel
from graphc.backends.llvm.codegen.vector import (
    fma_of,
    masked_load_of,
    masked_store_of,
    splat,
    transpose,
    vector_bytes,
)
from graphc.backends.llvm.lower.conv.direct_plan import MIN_ITEMS, SLOTS, Direct, balanced


def emit(k: Kernel, conv: Direct, image, weight, out, scratch, epilogue=None,
         nonfinite=None) -> None:
    """The calling thread's share of out (n, cout, ho, wo); epilogue(n, k0, k1, q0, q1)
    runs on each finished block: output planes [k0, k1) of image n, flat pixels
    [q0, q1). With weights that are not all finite, `nonfinite()` runs instead if given
    (a reference-exact path: the input gradient must not multiply padding), else the
    kernel runs every kernel row."""
    if conv.images * conv.cout * conv.ho * conv.wo == 0:
        return
    assert np.dtype(out.dtype) == np.dtype(conv.dtype), (out.dtype, conv.dtype)
    b = k.b
    finite = weights_finite(k, weight, conv.groups * conv.group_weights)
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
    bands = min(conv.ho, -(-MIN_ITEMS // (conv.images * k_blocks)))
    band_rows = balanced(conv.ho, -(-conv.ho // bands))
    bands = len(band_rows)
    workers = smin(b, k.nthreads, i64(SLOTS))
    with k.when(b.icmp_signed("<", k.tid, workers)):
        slot = b.gep(scratch, [b.mul(k.tid, i64(conv.slot_bytes))], source_etype=I8)
        padded = slot
        second = b.gep(slot, [i64(conv.second_offset)], source_etype=I8)
        _fill_zero(k, padded, conv.dtype, conv.cin * conv.plane)
        if conv.variant == "channels":
            _pack_weights(k, conv, weight, second)

        def item_body(n, k0, count, y0, rows):
            if conv.variant == "positions":
                w_base = i64(0) if conv.groups == 1 else \
                    b.mul(b.urem(n, i64(conv.groups)), i64(conv.group_weights))
                _planes(k, conv, weight, padded, second, w_base, k0, r, count, y0, rows, skip)
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

        items = conv.images * k_blocks * bands
        chunk = b.sdiv(b.add(i64(items), b.sub(workers, i64(1))), workers)
        start = smin(b, b.mul(k.tid, chunk), i64(items))
        stop = smin(b, b.add(start, chunk), i64(items))
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
                k1 = smin(b, b.add(k0, i64(per_item)), i64(conv.cout))
                y1 = smin(b, b.add(y0, i64(band_rows[0])), i64(conv.ho))
                image, first = n, i64(0)  # the output channels of (image, group) n
                if conv.groups > 1:
                    image = b.udiv(n, i64(conv.groups))
                    first = b.mul(b.urem(n, i64(conv.groups)), i64(conv.cout))
                epilogue(image, b.add(first, k0), b.add(first, k1), b.mul(y0, i64(conv.wo)),
                         b.mul(y1, i64(conv.wo)))


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


def _planes(k: Kernel, conv: Direct, weight, padded, tile, w_base, k0, r: int, kb: int, y0,
            rows: int, skip) -> None:
    """Tile planes 0..kb of output channels k0.. (of the group whose weights start at
    w_base) for the output rows [y0, y0 + rows), positions from y0 * wp on: blocks of r
    vectors, then one of the remaining vectors."""
    b = k.b
    base = b.mul(y0, i64(conv.wp))
    full, rest = divmod(-(-rows * conv.wp // conv.lanes), r)
    with k.loop(0, full, "jb") as jb:
        _block(k, conv, weight, padded, tile, w_base, k0, base,
               b.mul(jb, i64(r * conv.lanes)), r, kb, skip)
    if rest:
        _block(k, conv, weight, padded, tile, w_base, k0, base, i64(full * r * conv.lanes),
               rest, kb, skip)


def _block(k: Kernel, conv: Direct, weight, padded, tile, w_base, k0, base, offset, r: int,
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
    w_block = b.add(w_base, b.add(b.mul(k0, i64(conv.k_stride)), i64(tap0)))
    j0 = b.add(base, offset)
    y1 = smin(b, b.udiv(b.add(j0, i64(r * lanes - 1)), i64(conv.wp)), i64(conv.ho - 1))
    first, last = _kernel_rows(b, conv, b.udiv(j0, i64(conv.wp)), y1, skip)
    with k.loop(0, conv.cin, "c") as c:
        p_c = b.add(b.mul(c, i64(conv.plane)), j0)
        w_c = b.add(w_block, b.mul(c, i64(conv.c_stride)))
        with k.loop(first, last, "ky") as ky, k.loop(0, conv.kw, "kx") as kx:
            p_tap = b.add(b.add(p_c, b.mul(ky, i64(conv.dh * conv.wp))),
                          b.mul(kx, i64(conv.dw)))
            w_tap = b.add(b.add(w_c, b.mul(ky, i64(dky))), b.mul(kx, i64(dkx)))
            accs = [[b.load(slot, typ=vec) for slot in row] for row in slots]
            xs = [b.load(k.gep(padded, dt, b.add(p_tap, i64(v * lanes))), typ=vec,
                         align=size) for v in range(r)]
            for kk in range(kb):
                at = b.add(w_tap, i64(kk * conv.k_stride))
                scalar = convert(b, k.load(weight.ptr, weight.dtype, at), weight.dtype, dt)
                w_splat = splat(b, scalar, vec)
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
    lanes = vector_bytes() // dt.itemsize
    vec = ir.VectorType(llvm_type(dt), lanes)
    mask_type = ir.VectorType(I1, lanes)
    load = masked_load_of(k.mc, vec)
    store = masked_store_of(k.mc, vec)
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
        parts = balanced(total, most)
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
            p_tap = b.add(b.add(p_c, b.mul(ky, i64(conv.dh * conv.wp))),
                          b.mul(kx, i64(conv.dw)))
            w_tap = b.add(w_c, b.mul(b.add(b.mul(ky, i64(conv.kw)), kx), i64(kp)))
            accs = [[b.load(slot, typ=vec) for slot in row] for row in slots]
            ws = [b.load(k.gep(packed, dt, b.add(w_tap, i64(g * lanes))), typ=vec,
                         align=size) for g in range(vectors)]
            for p, (dy, dx) in enumerate(pixels):
                x = splat(b, k.load(padded, dt, b.add(p_tap, i64(dy * conv.wp + dx))), vec)
                accs[p] = [b.call(fma, [ws[g], x, accs[p][g]]) for g in range(vectors)]
            for row, values in zip(slots, accs):
                for slot, value in zip(row, values):
                    b.store(value, slot)
    store = masked_store_of(k.mc, vec)
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
    image rows for some output row in [y0, y1] (ky * dh + y - ph inside); the others add
    only zeros from the padding (the input gradient pads by span - 1 - padding). Without
    it, all rows: a weight's inf or NaN times the padding gives NaN, as in the
    reference."""
    dh = i64(conv.dh)
    above = b.sub(i64(conv.ph), y1)  # first = ceil(above / dh), at least 0
    first = smax(b, b.sdiv(b.add(above, i64(conv.dh - 1)), dh), i64(0))
    below = b.sub(i64(conv.ph + conv.h - 1), y0)  # last = floor(below / dh) + 1, if below >= 0
    last = b.select(b.icmp_signed("<", below, i64(0)), i64(0),
                    smin(b, b.add(b.sdiv(below, dh), i64(1)), i64(conv.kh)))
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
    return dt, conv.lanes, vec, fma_of(k.mc, vec)

