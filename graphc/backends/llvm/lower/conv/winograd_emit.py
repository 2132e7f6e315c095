"""The Winograd convolution's kernel (winograd_plan.py describes it and when it is taken):
the weight transform into shared scratch, then per block of tiles the input transform
(masked gathers into packed B panels), the GEMM micro-kernel's products, the output
transform (scatters), and blocks whose outputs are not all finite computed again term by
term."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm import gemm
from graphc.backends.llvm.codegen.arith import smax, smin
from graphc.backends.llvm.codegen.irtypes import F64, I1, I8, I32, PTR, i64, llvm_type
from graphc.backends.llvm.codegen.kernel import Kernel
from graphc.backends.llvm.codegen.vector import (
    gather_of,
    scatter_of,
    splat,
    type_suffix,
    vector_bytes,
)
from graphc.backends.llvm.codegen.vector import lanes as vector_lanes
from graphc.backends.llvm.lower.conv.winograd_plan import KERNEL, SLOTS, Winograd, matrices


class _Vec:
    """Vector helpers over `lanes` lanes (one lane per tile of a block)."""

    def __init__(self, k: Kernel, dtype: np.dtype, lanes: int):
        self.b, self.lanes, self.mc = k.b, lanes, k.mc
        self.t = llvm_type(dtype)
        self.vec = ir.VectorType(self.t, lanes)
        self.ivec = ir.VectorType(I32, lanes)
        self.mask = ir.VectorType(I1, lanes)
        self.zero = ir.Constant(self.vec, [0.0] * lanes)
        self.none = ir.Constant(self.mask, [0] * lanes)
        self.gather = gather_of(k.mc, self.vec)
        self.scatter = scatter_of(k.mc, self.vec)
        self.fabs = k.mc.function(f"llvm.fabs.v{lanes}{type_suffix(dtype)}", self.vec, [self.vec])
        self.size = ir.Constant(I32, np.dtype(dtype).itemsize)

    def ints(self, values) -> ir.Constant:
        return ir.Constant(self.ivec, list(values))

    def splat(self, x: ir.Value) -> ir.Value:
        """An i32 vector of the i64 scalar x."""
        return splat(self.b, self.b.trunc(x, I32), self.ivec)

    def below(self, x: ir.Value, limit: int) -> ir.Value:
        """Lanes where 0 <= x < limit."""
        return self.b.icmp_unsigned("<", x, self.ints([limit] * self.lanes))

    def scale(self, c) -> ir.Constant:
        """A float vector of the constant c."""
        return ir.Constant(self.vec, [float(c)] * self.lanes)

    def pointers(self, base: ir.Value, offsets: ir.Value) -> ir.Value:
        p = self.b.gep(base, [offsets], source_etype=self.t)
        p.type = ir.VectorType(PTR, self.lanes)  # llvmlite types a vector GEP as ptr
        return p


def combine(b: ir.IRBuilder, coeffs, values: list, scale=None) -> ir.Value:
    """sum of coeffs[j] * values[j] (zero terms skipped, +-1 as adds and subtractions);
    scale(c) makes the constant operand of a product."""
    total = None
    for c, v in zip(coeffs, values):
        if c == 0:
            continue
        negative = c < 0
        term = v if abs(c) == 1 else b.fmul(v, scale(abs(c)))
        if total is None:
            total = b.fneg(term) if negative else term
        else:
            total = b.fsub(total, term) if negative else b.fadd(total, term)
    return total


def _transform(b, left, x, right, scale) -> list:
    """left @ x @ right^T for a square list-of-lists x of values."""
    rows = [[combine(b, coeffs, [x[i][j] for i in range(len(x))], scale)
             for j in range(len(x[0]))] for coeffs in left]
    return [[combine(b, coeffs, row, scale) for coeffs in right] for row in rows]


def emit(k: Kernel, conv: Winograd, image, weight, out, scratch, epilogue=None) -> None:
    """The calling thread's share of out = conv(image, weight); epilogue(n, k0, k1, q0, q1)
    runs on finished planes [k0, k1) of image n, flat pixels [q0, q1)."""
    if conv.n * conv.cout * conv.ho * conv.wo == 0:
        return
    b = k.b
    _weights(k, conv, weight, scratch)
    k.mc.wait_all(b, k.nthreads)  # every thread reads all of U
    workers = b.select(b.icmp_signed("<", k.nthreads, i64(SLOTS)), k.nthreads, i64(SLOTS))
    with k.when(b.icmp_signed("<", k.tid, workers)):
        slot = b.gep(scratch, [b.add(i64(conv.u_bytes), b.mul(k.tid, i64(conv.slot_bytes)))],
                     source_etype=I8)
        chunk = b.sdiv(b.add(i64(conv.items), b.sub(workers, i64(1))), workers)
        start = smin(b, b.mul(k.tid, chunk), i64(conv.items))
        stop = smin(b, b.add(start, chunk), i64(conv.items))
        with k.loop(start, stop, "item") as item:
            row0 = b.mul(item, i64(conv.item_rows))
            row1 = smin(b, b.add(row0, i64(conv.item_rows)), i64(conv.rows))
            first = b.mul(row0, i64(conv.tiles_x))
            end = b.mul(row1, i64(conv.tiles_x))
            blocks = b.udiv(b.add(b.sub(end, first), i64(conv.width - 1)), i64(conv.width))
            with k.loop(0, blocks, "block") as block:
                t0 = b.add(first, b.mul(block, i64(conv.width)))
                _block(k, conv, image, weight, out, scratch, slot, t0, end)
            if epilogue is not None:
                _epilogue(k, conv, epilogue, row0, row1)


def _epilogue(k: Kernel, conv: Winograd, epilogue, row0, row1) -> None:
    """epilogue over the output rows of tile rows [row0, row1) of the batch, image by
    image."""
    b = k.b
    n0 = b.udiv(row0, i64(conv.tiles_y))
    n1 = b.udiv(b.add(row1, i64(conv.tiles_y - 1)), i64(conv.tiles_y))
    with k.loop(n0, n1, "en") as n:
        base = b.mul(n, i64(conv.tiles_y))
        lo = b.sub(smax(b, row0, base), base)
        hi = b.sub(smin(b, row1, b.add(base, i64(conv.tiles_y))), base)
        y1 = smin(b, b.mul(hi, i64(conv.m)), i64(conv.ho))
        epilogue(n, i64(0), i64(conv.cout), b.mul(b.mul(lo, i64(conv.m)), i64(conv.wo)),
                 b.mul(y1, i64(conv.wo)))


def _weights(k: Kernel, conv: Winograd, weight, scratch) -> None:
    """U[xi][kp][c][r] = (G g G^T)[xi] of output channel kp * MR + r over channel c (zero
    past cout), in float64 rounded once; threads split the (kp, c) pairs, MR lanes each."""
    b = k.b
    mr = gemm.mr()
    v = _Vec(k, np.dtype("float64"), mr)
    _, g_mat, _ = matrices(conv.m)
    t = llvm_type(conv.dtype)
    kp_count = conv.kpad // mr
    start, stop = k.split(kp_count * conv.cin)
    wvec = _Vec(k, np.dtype(weight.dtype), mr)
    with k.loop(start, stop, "pair") as pair:
        kp, c = b.udiv(pair, i64(conv.cin)), b.urem(pair, i64(conv.cin))
        rows = b.add(v.splat(b.mul(kp, i64(mr))), v.ints(range(mr)))
        valid = v.below(rows, conv.cout)
        taps = KERNEL * KERNEL
        if conv.flipped:  # w[c, o, 2 - i, 2 - j]: (c * cout + o) * 9
            base = b.mul(b.add(v.splat(b.mul(c, i64(conv.cout))), rows), v.ints([taps] * mr))
        else:  # w[o, c, i, j]: (o * cin + c) * 9
            base = b.mul(b.add(b.mul(rows, v.ints([conv.cin] * mr)),
                               v.splat(c)), v.ints([taps] * mr))
        g = [[None] * KERNEL for _ in range(KERNEL)]
        for i in range(KERNEL):
            for j in range(KERNEL):
                tap = (KERNEL - 1 - i) * KERNEL + KERNEL - 1 - j if conv.flipped \
                    else i * KERNEL + j
                at = b.add(base, v.ints([tap] * mr))
                value = b.call(wvec.gather, [wvec.pointers(weight.ptr, at), wvec.size, valid,
                                             wvec.zero])
                g[i][j] = value if wvec.t == F64 else b.fpext(value, v.vec)
        u = _transform(b, g_mat, g, g_mat, v.scale)
        out_vec = ir.VectorType(t, mr)
        for x1 in range(conv.alpha):
            for x2 in range(conv.alpha):
                xi = x1 * conv.alpha + x2
                value = u[x1][x2] if t == F64 else b.fptrunc(u[x1][x2], out_vec)
                at = b.mul(b.add(b.mul(i64(xi * kp_count), i64(conv.cin)),
                                 b.add(b.mul(kp, i64(conv.cin)), c)), i64(mr))
                row_bytes = mr * np.dtype(conv.dtype).itemsize  # rows of MR values
                b.store(value, b.gep(scratch, [at], source_etype=t), align=row_bytes & -row_bytes)


@dataclass
class _Tiles:
    """One vector of a block's tiles (lane = tile): which part of the block, which lanes
    hold tiles, each tile's image and its first output row and column."""

    part: ir.Value
    valid: ir.Value
    n: ir.Value
    y0: ir.Value
    x0: ir.Value


def _block(k: Kernel, conv: Winograd, image, weight, out, scratch, slot, t0, end) -> None:
    """Tiles [t0, min(t0 + NR, end)) of the batch (flat over its tile rows), in vectors
    of one register (gathers and scatters take 32-bit indices only so)."""
    b = k.b
    lanes = vector_lanes(conv.dtype)
    v = _Vec(k, conv.dtype, lanes)
    products = b.gep(slot, [i64(conv.v_bytes)], source_etype=I8)

    def tiles(part) -> _Tiles:
        tile = b.add(v.splat(b.add(t0, b.mul(part, i64(lanes)))), v.ints(range(lanes)))
        valid = b.icmp_signed("<", tile, v.splat(end))
        tile = b.select(valid, tile, v.ints([0] * lanes))
        per_image = v.ints([conv.tiles_y * conv.tiles_x] * lanes)
        n, local = b.udiv(tile, per_image), b.urem(tile, per_image)
        ty = b.udiv(local, v.ints([conv.tiles_x] * lanes))
        tx = b.urem(local, v.ints([conv.tiles_x] * lanes))
        return _Tiles(part, valid, n, b.mul(ty, v.ints([conv.m] * lanes)),
                      b.mul(tx, v.ints([conv.m] * lanes)))

    parts = conv.width // lanes
    with k.loop(0, parts, "part") as part:
        _input_transform(k, v, conv, image, tiles(part), slot)
    _products(k, conv, scratch, slot, products)
    bad = k.alloca(v.mask)
    b.store(v.none, bad)
    with k.loop(0, parts, "part") as part:
        _output_transform(k, v, conv, out, tiles(part), products, bad)
    any_bad = k.mc.function(f"llvm.vector.reduce.or.v{lanes}i1", I1, [v.mask])
    with k.when(b.call(any_bad, [b.load(bad, typ=v.mask)])):
        _exact(k, conv, image, weight, out, t0, end)


def _input_transform(k: Kernel, v: _Vec, conv: Winograd, image, tiles: _Tiles,
                     dest) -> None:
    """dest[xi][c][lane] = (B^T d B)[xi] of the tile's patch d in channel c: the packed
    B panels of the GEMMs (masked gathers; the padding and lanes past the tiles read 0)."""
    b, lanes, dt = k.b, v.lanes, conv.dtype
    iy0 = b.sub(tiles.y0, v.ints([conv.ph] * lanes))
    ix0 = b.sub(tiles.x0, v.ints([conv.pw] * lanes))
    row_ok = [v.below(b.add(iy0, v.ints([i] * lanes)), conv.h) for i in range(conv.alpha)]
    col_ok = [b.and_(tiles.valid, v.below(b.add(ix0, v.ints([j] * lanes)), conv.w))
              for j in range(conv.alpha)]
    origin = b.add(b.mul(tiles.n, v.ints([conv.cin * conv.h * conv.w] * lanes)),
                   b.add(b.mul(iy0, v.ints([conv.w] * lanes)), ix0))
    bt = matrices(conv.m)[0]
    with k.loop(0, conv.cin, "c") as c:
        plane = k.gep(image.ptr, dt, b.mul(c, i64(conv.h * conv.w)))
        d = [[b.call(v.gather, [v.pointers(plane, b.add(origin, v.ints([i * conv.w + j] * lanes))),
                                v.size, b.and_(row_ok[i], col_ok[j]), v.zero])
              for j in range(conv.alpha)] for i in range(conv.alpha)]
        transformed = _transform(b, bt, d, bt, v.scale)
        for x1 in range(conv.alpha):
            for x2 in range(conv.alpha):
                xi = x1 * conv.alpha + x2
                at = b.add(b.mul(b.add(i64(xi * conv.cin), c), i64(conv.width)),
                           b.mul(tiles.part, i64(lanes)))
                b.store(transformed[x1][x2], k.gep(dest, dt, at), align=vector_bytes())


def _products(k: Kernel, conv: Winograd, u, v, dest) -> None:
    """dest[xi] (kpad x NR) = U[xi] (kpad x cin) @ V[xi] (cin x NR), MR rows a call of
    the GEMM's micro-kernel."""
    b, dt, lanes = k.b, conv.dtype, conv.width
    micro = gemm.micro_kernel(k.mc, dt)
    kp_count = conv.kpad // gemm.mr()
    with k.loop(0, conv.alpha ** 2, "xi") as xi:
        panel_b = k.gep(v, dt, b.mul(xi, i64(conv.cin * lanes)))
        with k.loop(0, kp_count, "kp") as kp:
            panel_a = k.gep(u, dt, b.mul(b.add(b.mul(xi, i64(kp_count)), kp),
                                         i64(conv.cin * gemm.mr())))
            rows = k.gep(dest, dt, b.mul(b.add(b.mul(xi, i64(conv.kpad)),
                                               b.mul(kp, i64(gemm.mr()))), i64(lanes)))
            b.call(micro, [panel_a, panel_b, rows, i64(lanes), i64(conv.cin),
                           ir.Constant(I1, 0)])


def _output_transform(k: Kernel, v: _Vec, conv: Winograd, out, tiles: _Tiles, products,
                      bad) -> None:
    """Each tile's outputs (A^T M A) scattered into place; lanes with an output that is
    not finite are flagged in `bad`."""
    b, lanes, dt = k.b, v.lanes, conv.dtype
    inf = v.scale(float("inf"))
    out_row = [v.below(b.add(tiles.y0, v.ints([a] * lanes)), conv.ho) for a in range(conv.m)]
    out_col = [b.and_(tiles.valid, v.below(b.add(tiles.x0, v.ints([j] * lanes)), conv.wo))
               for j in range(conv.m)]
    origin = b.add(b.mul(tiles.n, v.ints([conv.cout * conv.ho * conv.wo] * lanes)),
                   b.add(b.mul(tiles.y0, v.ints([conv.wo] * lanes)), tiles.x0))
    at = matrices(conv.m)[2]
    column = b.mul(tiles.part, i64(lanes))
    with k.loop(0, conv.cout, "o") as o:
        m = [[b.load(k.gep(products, dt, b.add(b.mul(b.add(i64(xi * conv.kpad), o),
                                                     i64(conv.width)), column)),
                     typ=v.vec, align=vector_bytes())
              for xi in range(x1 * conv.alpha, (x1 + 1) * conv.alpha)]
             for x1 in range(conv.alpha)]
        y = _transform(b, at, m, at, v.scale)
        plane = k.gep(out.ptr, dt, b.mul(o, i64(conv.ho * conv.wo)))
        flags = b.load(bad, typ=v.mask)
        for a in range(conv.m):
            for j in range(conv.m):
                mask = b.and_(out_row[a], out_col[j])
                finite = b.fcmp_ordered("<", b.call(v.fabs, [y[a][j]]), inf)
                flags = b.or_(flags, b.and_(mask, b.not_(finite)))
                where = v.pointers(plane, b.add(origin, v.ints([a * conv.wo + j] * lanes)))
                b.call(v.scatter, [y[a][j], where, v.size, mask])
        b.store(flags, bad)


def _exact(k: Kernel, conv: Winograd, image, weight, out, t0, end) -> None:
    """Tiles [t0, min(t0 + NR, end)) of the batch summed term by term, as the reference: the
    forward convolution multiplies the zero padding (inf * 0 is NaN), the input gradient
    only the gradient's own values. Run-time loops throughout: the path is taken only for
    tiles with an inf or NaN, and unrolled it was half of the kernel's compile time."""
    b = k.b
    dt = np.dtype(conv.dtype)
    zero = ir.Constant(llvm_type(dt), 0.0)
    total = k.alloca(llvm_type(dt))
    stop = smin(b, b.add(t0, i64(conv.width)), end)
    with k.loop(t0, stop, "t") as tile:
        n, local = (f(tile, i64(conv.tiles_y * conv.tiles_x)) for f in (b.udiv, b.urem))
        ty, tx = b.udiv(local, i64(conv.tiles_x)), b.urem(local, i64(conv.tiles_x))
        with k.loop(0, conv.cout, "o") as o:
            dst = b.mul(b.add(b.mul(n, i64(conv.cout)), o), i64(conv.ho * conv.wo))
            y0, x0 = b.mul(ty, i64(conv.m)), b.mul(tx, i64(conv.m))
            with (k.loop(y0, smin(b, b.add(y0, i64(conv.m)), i64(conv.ho)), "y") as y,
                  k.loop(x0, smin(b, b.add(x0, i64(conv.m)), i64(conv.wo)), "x") as x):
                b.store(zero, total)
                with (k.loop(0, conv.cin, "ec") as c, k.loop(0, KERNEL, "ei") as i,
                      k.loop(0, KERNEL, "ej") as j):
                    src = b.mul(b.add(b.mul(n, i64(conv.cin)), c), i64(conv.h * conv.w))
                    iy = b.add(y, b.sub(i, i64(conv.ph)))
                    ix = b.add(x, b.sub(j, i64(conv.pw)))
                    ok = b.and_(b.icmp_unsigned("<", iy, i64(conv.h)),
                                b.icmp_unsigned("<", ix, i64(conv.w)))
                    at = b.select(ok, b.add(src, b.add(b.mul(iy, i64(conv.w)), ix)), i64(0))
                    value = b.select(ok, k.load(image.ptr, dt, at), zero)
                    wt = k.load(weight.ptr, dt, _tap(b, conv, o, c, i, j))
                    acc = b.load(total, typ=llvm_type(dt))
                    new = b.fadd(acc, b.fmul(wt, value))
                    b.store(new if not conv.flipped else b.select(ok, new, acc), total)
                k.store(b.load(total, typ=llvm_type(dt)), out.ptr, dt,
                        b.add(dst, b.add(b.mul(y, i64(conv.wo)), x)))


def _tap(b, conv: Winograd, o, c, i, j):
    """The flat index of tap (i, j) (run-time values) of output channel o's filter over
    input channel c."""
    last = i64(KERNEL - 1)
    if conv.flipped:  # w[c, o, 2 - i, 2 - j]
        return b.add(b.mul(b.add(b.mul(c, i64(conv.cout)), o), i64(KERNEL * KERNEL)),
                     b.add(b.mul(b.sub(last, i), i64(KERNEL)), b.sub(last, j)))
    return b.add(b.mul(b.add(b.mul(o, i64(conv.cin)), c), i64(KERNEL * KERNEL)),
                 b.add(b.mul(i, i64(KERNEL)), j))
