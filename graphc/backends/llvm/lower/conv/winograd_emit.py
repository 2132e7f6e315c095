"""The Winograd convolution's kernel (winograd_plan.py describes it and when it is taken).

Its work is done by two library functions, the same for every shape (a per-site
descriptor, a constant i64 array, gives them the shapes at run time), so their object
code is compiled once per machine and kept in the disk cache like the GEMM's
(runtime/partition.py), and a network's Winograd layers cost one small kernel each to
compile, not ~180 KB of IR: `gc_winograd_weights_*` transforms a thread's share of the
weights into shared scratch; `gc_winograd_item_*` computes one item (a run of tile
rows) block by block: the input transform (into packed B panels), the GEMM
micro-kernel's products, the output transform, and blocks whose outputs are not all
finite computed again term by term. Lanes are tiles, and a tile's patch and outputs are
strided across them: with AVX-512 they are masked gathers and scatters; elsewhere LLVM
would make each a branch and a load or store per lane, so the patch is read a row per
lane with masked loads (AVX2) or lane by lane (SSE, NEON), and blocks of whole tiles
store a tile row per lane after a transpose in registers. The kernel itself calls the
two around a barrier and runs the epilogue on each item's rows while they are in cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm import gemm
from graphc.backends.llvm.codegen.arith import smax, smin
from graphc.backends.llvm.codegen.irtypes import F64, I1, I8, I32, I64, PTR, i64, llvm_type
from graphc.backends.llvm.codegen.kernel import Kernel
from graphc.backends.llvm.codegen.vector import (
    gather_of,
    masked_load_of,
    scatter_of,
    splat,
    transpose,
    type_suffix,
    vector_bytes,
)
from graphc.backends.llvm.codegen.vector import lanes as vector_lanes
from graphc.backends.llvm.lower.conv.winograd_plan import KERNEL, SLOTS, Winograd, matrices

# The descriptor's words: the shapes and scratch layout of one convolution.
FIELDS = ("n", "cin", "h", "w", "cout", "ph", "pw", "ho", "wo", "tiles_y", "tiles_x",
          "item_rows", "items", "kpad", "u_bytes", "slot_bytes", "v_bytes")


def descriptor(conv: Winograd) -> list[int]:
    """The run-time parameters of a convolution, in FIELDS order."""
    return [int(getattr(conv, name)) for name in FIELDS]


@dataclass(frozen=True)
class Variant:
    """What a library function is compiled for (shapes come at run time): the compute
    dtype, the tile size m of F(m x m, 3 x 3), and whether the filter is `flipped` (the
    input gradient)."""

    dtype: np.dtype
    m: int
    flipped: bool

    @property
    def alpha(self) -> int:
        return self.m + KERNEL - 1

    @property
    def width(self) -> int:
        """Tiles per block: the GEMM micro-kernel's NR."""
        return gemm.nr(self.dtype)

    def name(self, part: str) -> str:
        return (f"gc_winograd_{part}_{llvm_type(self.dtype)}_f{self.m}"
                + ("_flipped" if self.flipped else ""))


class _Fields:
    """The descriptor's words, loaded once at a library function's entry."""

    def __init__(self, b: ir.IRBuilder, desc: ir.Value):
        for at, name in enumerate(FIELDS):
            setattr(self, name, b.load(b.gep(desc, [i64(at)], source_etype=I64), typ=I64))


class _Vec:
    """Vector helpers over `lanes` lanes (one lane per tile of a block)."""

    def __init__(self, k: Kernel, dtype: np.dtype, lanes: int):
        self.b, self.lanes, self.mc, self.dtype = k.b, lanes, k.mc, np.dtype(dtype)
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

    def below(self, x: ir.Value, limit: ir.Value) -> ir.Value:
        """Lanes where 0 <= x < limit (an i64 scalar)."""
        return self.b.icmp_unsigned("<", x, self.splat(limit))

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
    variant = Variant(conv.dtype, conv.m, conv.flipped)
    desc = k.mc.words("gc_winograd_desc", descriptor(conv))
    b.call(_weights_function(k.mc, variant),
           [desc, weight.ptr, scratch, k.tid, k.nthreads, k.step])
    k.mc.wait_all(b, k.nthreads)  # every thread reads all of U
    workers = b.select(b.icmp_signed("<", k.nthreads, i64(SLOTS)), k.nthreads, i64(SLOTS))
    item_function = _item_function(k.mc, variant)
    with k.when(b.icmp_signed("<", k.tid, workers)):
        chunk = b.sdiv(b.add(i64(conv.items), b.sub(workers, i64(1))), workers)
        start = smin(b, b.mul(k.tid, chunk), i64(conv.items))
        stop = smin(b, b.add(start, chunk), i64(conv.items))
        with k.loop(start, stop, "item") as item:
            b.call(item_function, [desc, image.ptr, weight.ptr, out.ptr, scratch, item,
                                   k.tid, workers, k.step])
            if epilogue is not None:
                row0 = b.mul(item, i64(conv.item_rows))
                row1 = smin(b, b.add(row0, i64(conv.item_rows)), i64(conv.rows))
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


def _gathers_kept() -> bool:
    """Whether LLVM emits a masked gather as a gather instruction: with AVX-512 only here
    (on AVX2 it does so only for CPUs it tunes as fast-gather, Intel's from Skylake; at
    znver3 and x86-64-v3 it turns each into a branch, a load and an insertion per lane,
    with the partial vector on the stack)."""
    return vector_bytes() >= 64


def _weights_function(mc, variant: Variant) -> ir.Function:
    """gc_winograd_weights_*(desc, weight, scratch, tid, nthreads, step): U[xi][kp][c][r] =
    (G g G^T)[xi] of output channel kp * MR + r over channel c (zero past cout), in
    float64 rounded once; threads split the (kp, c) pairs, MR lanes each."""
    name = variant.name("weights")
    existing = mc.module.globals.get(name)
    if existing is not None:
        return existing
    k = Kernel(mc, name, 3)
    desc, weight, scratch = k.buffers
    b = k.b
    f = _Fields(b, desc)
    mr = gemm.mr()
    v = _Vec(k, np.dtype("float64"), mr)
    _, g_mat, _ = matrices(variant.m)
    t = llvm_type(variant.dtype)
    kp_count = b.udiv(f.kpad, i64(mr))
    start, stop = k.split(b.mul(kp_count, f.cin))
    wvec = _Vec(k, variant.dtype, mr)
    taps = KERNEL * KERNEL
    with k.loop(start, stop, "pair") as pair:
        kp, c = b.udiv(pair, f.cin), b.urem(pair, f.cin)
        rows = b.add(v.splat(b.mul(kp, i64(mr))), v.ints(range(mr)))
        valid = v.below(rows, f.cout)
        if variant.flipped:  # w[c, o, 2 - i, 2 - j]: (c * cout + o) * 9
            base = b.mul(b.add(v.splat(b.mul(c, f.cout)), rows), v.ints([taps] * mr))
        else:  # w[o, c, i, j]: (o * cin + c) * 9
            base = b.mul(b.add(b.mul(rows, v.splat(f.cin)), v.splat(c)), v.ints([taps] * mr))
        g = [[None] * KERNEL for _ in range(KERNEL)]
        load = (_filter_gathers if _gathers_kept() else _filter_lane_loads)(k, wvec, weight,
                                                                            base, valid)
        for i in range(KERNEL):
            for j in range(KERNEL):
                tap = (KERNEL - 1 - i) * KERNEL + KERNEL - 1 - j if variant.flipped \
                    else i * KERNEL + j
                value = load(tap)
                g[i][j] = value if wvec.t == F64 else b.fpext(value, v.vec)
        u = _transform(b, g_mat, g, g_mat, v.scale)
        out_vec = ir.VectorType(t, mr)
        row_bytes = mr * np.dtype(variant.dtype).itemsize  # rows of MR values
        for x1 in range(variant.alpha):
            for x2 in range(variant.alpha):
                xi = x1 * variant.alpha + x2
                value = u[x1][x2] if t == F64 else b.fptrunc(u[x1][x2], out_vec)
                at = b.mul(b.add(b.mul(b.mul(i64(xi), kp_count), f.cin),
                                 b.add(b.mul(kp, f.cin), c)), i64(mr))
                b.store(value, b.gep(scratch, [at], source_etype=t), align=row_bytes & -row_bytes)
    k.finish()
    return k.function


def _filter_gathers(k: Kernel, v: _Vec, weight, base, valid):
    """load(tap): tap `tap` of each lane's filter (flat offsets `base`, zero where not
    `valid`) as a masked gather, where the target has a gather instruction LLVM keeps
    (AVX-512)."""
    def load(tap):
        at = k.b.add(base, v.ints([tap] * v.lanes))
        return k.b.call(v.gather, [v.pointers(weight, at), v.size, valid, v.zero])
    return load


def _filter_lane_loads(k: Kernel, v: _Vec, weight, base, valid):
    """load(tap) as a scalar load per lane (a filter's taps are contiguous), where LLVM
    would turn a masked gather into a branch per lane (SSE, AVX2, NEON): the lanes off
    `valid` read the weight's first element and are zeroed after, as the gather's
    passthrough would leave them."""
    b = k.b
    safe = b.select(valid, base, v.ints([0] * v.lanes))
    first = [k.gep(weight, v.dtype, b.sext(b.extract_element(safe, ir.Constant(I32, lane)),
                                           I64))
             for lane in range(v.lanes)]
    size = int(v.size.constant)

    def load(tap):
        value = ir.Constant(v.vec, ir.Undefined)
        for lane, at in enumerate(first):
            x = b.load(b.gep(at, [i64(tap)], source_etype=v.t), typ=v.t, align=size)
            value = b.insert_element(value, x, ir.Constant(I32, lane))
        return b.select(valid, value, v.zero)
    return load


def _item_function(mc, variant: Variant) -> ir.Function:
    """gc_winograd_item_*(desc, image, weight, out, scratch, item, tid, nthreads, step):
    item `item` (tile rows [item * item_rows, ...) of the batch) in blocks of NR tiles,
    in thread `tid`'s scratch slot."""
    name = variant.name("item")
    existing = mc.module.globals.get(name)
    if existing is not None:
        return existing
    k = Kernel(mc, name, 5, n_scalars=1)
    desc, image, weight, out, scratch = k.buffers
    (item,) = k.scalars
    b = k.b
    f = _Fields(b, desc)
    slot = b.gep(scratch, [b.add(f.u_bytes, b.mul(k.tid, f.slot_bytes))], source_etype=I8)
    rows = b.mul(f.n, f.tiles_y)
    row0 = b.mul(item, f.item_rows)
    row1 = smin(b, b.add(row0, f.item_rows), rows)
    first = b.mul(row0, f.tiles_x)
    end = b.mul(row1, f.tiles_x)
    width = variant.width
    blocks = b.udiv(b.add(b.sub(end, first), i64(width - 1)), i64(width))
    with k.loop(0, blocks, "block") as block:
        t0 = b.add(first, b.mul(block, i64(width)))
        _block(k, variant, f, image, weight, out, scratch, slot, t0, end)
    k.finish()
    return k.function


@dataclass
class _Tiles:
    """One vector of a block's tiles (lane = tile): which part of the block, which lanes
    hold tiles, each tile's image and its first output row and column."""

    part: ir.Value
    valid: ir.Value
    n: ir.Value
    y0: ir.Value
    x0: ir.Value


def _tile_table(k: Kernel, variant: Variant, f: _Fields, t0, end) -> list[ir.Value]:
    """Stack arrays (i32, one entry per tile of the block) of each tile's image, first
    output row and first output column (zeros past `end`): one division for the block's
    first tile, then carried digits."""
    b = k.b
    width = variant.width
    table = [k.alloca(I32, width) for _ in range(3)]
    per_image = b.mul(f.tiles_y, f.tiles_x)
    digits = [k.alloca(I64) for _ in range(3)]
    local = b.urem(t0, per_image)
    for slot, value in zip(digits, (b.udiv(t0, per_image), b.udiv(local, f.tiles_x),
                                    b.urem(local, f.tiles_x))):
        b.store(value, slot)
    m = i64(variant.m)
    with k.loop(0, width, "lane") as lane:
        n, ty, tx = (b.load(slot, typ=I64) for slot in digits)
        inside = b.icmp_signed("<", b.add(t0, lane), end)
        for array, value in zip(table, (n, b.mul(ty, m), b.mul(tx, m))):
            value = b.select(inside, b.trunc(value, I32), ir.Constant(I32, 0))
            b.store(value, b.gep(array, [lane], source_etype=I32))
        tx = b.add(tx, i64(1))
        carry_x = b.icmp_signed("==", tx, f.tiles_x)
        ty = b.add(ty, b.zext(carry_x, I64))
        carry_y = b.icmp_signed("==", ty, f.tiles_y)
        b.store(b.select(carry_x, i64(0), tx), digits[2])
        b.store(b.select(carry_y, i64(0), ty), digits[1])
        b.store(b.add(n, b.zext(carry_y, I64)), digits[0])
    return table


def _block(k: Kernel, variant: Variant, f: _Fields, image, weight, out, scratch, slot, t0,
           end) -> None:
    """Tiles [t0, min(t0 + NR, end)) of the batch (flat over its tile rows), in vectors
    of one register (gathers and scatters take 32-bit indices only so)."""
    b = k.b
    lanes = vector_lanes(variant.dtype)
    v = _Vec(k, variant.dtype, lanes)
    products = b.gep(slot, [f.v_bytes], source_etype=I8)
    table = _tile_table(k, variant, f, t0, end)

    def tiles(part) -> _Tiles:
        first = b.mul(part, i64(lanes))
        tile = b.add(v.splat(b.add(t0, first)), v.ints(range(lanes)))
        n, y0, x0 = (b.load(b.gep(array, [first], source_etype=I32), typ=v.ivec, align=4)
                     for array in table)
        return _Tiles(part, b.icmp_signed("<", tile, v.splat(end)), n, y0, x0)

    parts = variant.width // lanes
    with k.loop(0, parts, "part") as part:
        _input_transform(k, v, variant, f, image, tiles(part), slot)
    _products(k, variant, f, scratch, slot, products)
    bad = k.alloca(v.mask)
    b.store(v.none, bad)
    with k.loop(0, parts, "part") as part:
        _output_transform(k, v, variant, f, out, tiles(part), products, bad)
    any_bad = k.mc.function(f"llvm.vector.reduce.or.v{lanes}i1", I1, [v.mask])
    with k.when(b.call(any_bad, [b.load(bad, typ=v.mask)])):
        _exact(k, variant, f, image, weight, out, t0, end)


def _input_transform(k: Kernel, v: _Vec, variant: Variant, f: _Fields, image,
                     tiles: _Tiles, dest) -> None:
    """dest[xi][c][lane] = (B^T d B)[xi] of the tile's patch d in channel c: the packed
    B panels of the GEMMs (masked gathers; the padding and lanes past the tiles read 0)."""
    b, lanes, dt, alpha = k.b, v.lanes, variant.dtype, variant.alpha
    iy0 = b.sub(tiles.y0, v.splat(f.ph))
    ix0 = b.sub(tiles.x0, v.splat(f.pw))
    row_ok = [v.below(b.add(iy0, v.ints([i] * lanes)), f.h) for i in range(alpha)]
    col_ok = [b.and_(tiles.valid, v.below(b.add(ix0, v.ints([j] * lanes)), f.w))
              for j in range(alpha)]
    plane_size = b.mul(f.h, f.w)
    origin = b.add(b.mul(tiles.n, v.splat(b.mul(f.cin, plane_size))),
                   b.add(b.mul(iy0, v.splat(f.w)), ix0))
    offsets = [[b.add(origin, v.splat(b.add(b.mul(i64(i), f.w), i64(j)))) for j in range(alpha)]
               for i in range(alpha)]
    bt = matrices(variant.m)[0]
    ok = [[b.and_(row_ok[i], col_ok[j]) for j in range(alpha)] for i in range(alpha)]
    if _gathers_kept():
        patch = _positions(alpha, _gathers(k, v, offsets, ok))
    elif vector_bytes() >= 32 and alpha <= lanes:  # AVX2: masked loads are instructions
        patch = _row_loads(k, v, variant, f, tiles, origin, row_ok)
    else:
        patch = _positions(alpha, _lane_loads(k, v, offsets, ok))
    with k.loop(0, f.cin, "c") as c:
        plane = k.gep(image, dt, b.mul(c, plane_size))
        d = patch(plane)
        transformed = _transform(b, bt, d, bt, v.scale)
        for x1 in range(alpha):
            for x2 in range(alpha):
                xi = x1 * alpha + x2
                at = b.add(b.mul(b.add(b.mul(i64(xi), f.cin), c), i64(variant.width)),
                           b.mul(tiles.part, i64(lanes)))
                b.store(transformed[x1][x2], k.gep(dest, dt, at), align=vector_bytes())


def _positions(alpha: int, load):
    """patch(plane) made of load(plane, i, j), one patch position at a time."""
    def patch(plane):
        return [[load(plane, i, j) for j in range(alpha)] for i in range(alpha)]
    return patch


def _row_loads(k: Kernel, v: _Vec, variant: Variant, f: _Fields, tiles: _Tiles, origin,
               row_ok):
    """patch(plane): each lane's patch rows as masked vector loads (a tile's patch row is
    contiguous), transposed in registers into the patch positions' lane vectors, where
    masked loads are instructions but LLVM would scalarize a gather (AVX2): alpha masked
    loads and a transpose per lane instead of alpha^2 scalar loads and insertions. A
    row's mask (the columns inside the image, none for padding rows and lanes past the
    tiles) is made once per block; the masked-off columns read 0, as the gathers did, and
    patch rows no lane of the block reads (a small plane's padding) are not loaded."""
    b, lanes, alpha = k.b, v.lanes, variant.alpha
    load = masked_load_of(k.mc, v.vec)
    columns = v.ints(range(lanes))
    in_patch = ir.Constant(v.mask, [j < alpha for j in range(lanes)])
    masks, starts = [], []
    for lane in range(lanes):
        at = ir.Constant(I32, lane)
        x0 = b.extract_element(b.sub(tiles.x0, v.splat(f.pw)), at)
        inside = b.and_(b.icmp_unsigned("<", b.add(splat(b, x0, v.ivec), columns),
                                        v.splat(f.w)), in_patch)
        masks.append([b.select(b.extract_element(b.and_(row_ok[i], tiles.valid), at),
                               inside, v.none) for i in range(alpha)])
        starts.append(b.sext(b.extract_element(origin, at), I64))

    flat = ir.IntType(lanes)
    needed = [b.icmp_unsigned("!=", b.bitcast(b.and_(row_ok[i], tiles.valid), flat),
                              ir.Constant(flat, 0)) for i in range(alpha)]

    def row(plane, i):
        loaded = [b.call(load, [b.gep(plane, [b.add(starts[lane], b.mul(i64(i), f.w))],
                                      source_etype=v.t),
                                v.size, masks[lane][i], v.zero])
                  for lane in range(lanes)]
        return transpose(b, loaded)[:alpha]

    def patch(plane):
        return [_unless_empty(b, v, needed[i], lambda i=i: row(plane, i))
                for i in range(alpha)]
    return patch


def _gathers(k: Kernel, v: _Vec, offsets, ok):
    """load(plane, i, j): the masked gather of patch position (i, j), where LLVM keeps it
    an instruction (AVX-512)."""
    def load(plane, i, j):
        return k.b.call(v.gather, [v.pointers(plane, offsets[i][j]), v.size, ok[i][j], v.zero])
    return load


def _lane_loads(k: Kernel, v: _Vec, offsets, ok):
    """load(plane, i, j) as a scalar load per lane, where LLVM would turn a masked gather
    into a branch, an extraction and an insertion per lane with each partial vector on the
    stack and masked loads are not instructions either (SSE, NEON): a lane's offset (that
    of the plane's first element where its mask is off, so every address is in the image)
    is taken out of its vector once per block, outside the channel loop, and the lanes off
    the mask are zeroed after the loads, as the gather's passthrough would leave them.
    Positions no lane of the block reads (a small plane's padding rows and columns) are not
    loaded at all."""
    b = k.b
    zero = v.ints([0] * v.lanes)
    at = [[[b.sext(b.extract_element(b.select(mask, offset, zero), ir.Constant(I32, lane)), I64)
            for lane in range(v.lanes)] for offset, mask in zip(row, masks)]
          for row, masks in zip(offsets, ok)]
    flat = ir.IntType(v.lanes)
    needed = [[b.icmp_unsigned("!=", b.bitcast(mask, flat), ir.Constant(flat, 0))
               for mask in masks] for masks in ok]
    size = int(v.size.constant)

    def lanes(plane, i, j):
        value = ir.Constant(v.vec, ir.Undefined)
        for lane in range(v.lanes):
            x = b.load(b.gep(plane, [at[i][j][lane]], source_etype=v.t), typ=v.t, align=size)
            value = b.insert_element(value, x, ir.Constant(I32, lane))
        return b.select(ok[i][j], value, v.zero)

    def load(plane, i, j):
        return _unless_empty(b, v, needed[i][j], lambda: lanes(plane, i, j))
    return load


def _unless_empty(b: ir.IRBuilder, v: _Vec, needed, make):
    """make() (a vector or a list of them) where `needed` (a block-invariant i1), else
    zeros: the patch positions or rows no lane of the block reads (a small plane's padding
    rows and columns) are not loaded."""
    before = b.block
    with b.if_then(needed, likely=True):
        made = make()
        after = b.block
    phis = []
    for value in made if isinstance(made, list) else [made]:
        phi = b.phi(v.vec)
        phi.add_incoming(value, after)
        phi.add_incoming(v.zero, before)
        phis.append(phi)
    return phis if isinstance(made, list) else phis[0]


def _products(k: Kernel, variant: Variant, f: _Fields, u, v, dest) -> None:
    """dest[xi] (kpad x NR) = U[xi] (kpad x cin) @ V[xi] (cin x NR), MR rows a call of
    the GEMM's micro-kernel."""
    b, dt, lanes = k.b, variant.dtype, variant.width
    micro = gemm.micro_kernel(k.mc, dt)
    kp_count = b.udiv(f.kpad, i64(gemm.mr()))
    with k.loop(0, variant.alpha ** 2, "xi") as xi:
        panel_b = k.gep(v, dt, b.mul(b.mul(xi, f.cin), i64(lanes)))
        with k.loop(0, kp_count, "kp") as kp:
            panel_a = k.gep(u, dt, b.mul(b.mul(b.add(b.mul(xi, kp_count), kp), f.cin),
                                         i64(gemm.mr())))
            rows = k.gep(dest, dt, b.mul(b.add(b.mul(kp, i64(variant.alpha ** 2)), xi),
                                         i64(gemm.mr() * lanes)))
            b.call(micro, [panel_a, panel_b, rows, i64(lanes), f.cin, ir.Constant(I1, 0)])


def _output_transform(k: Kernel, v: _Vec, variant: Variant, f: _Fields, out,
                      tiles: _Tiles, products, bad) -> None:
    """Each tile's outputs (A^T M A) scattered into place; lanes with an output that is
    not finite are flagged in `bad`."""
    b, lanes, dt, alpha, m = k.b, v.lanes, variant.dtype, variant.alpha, variant.m
    inf = v.scale(float("inf"))
    out_row = [v.below(b.add(tiles.y0, v.ints([a] * lanes)), f.ho) for a in range(m)]
    out_col = [b.and_(tiles.valid, v.below(b.add(tiles.x0, v.ints([j] * lanes)), f.wo))
               for j in range(m)]
    plane_size = b.mul(f.ho, f.wo)
    origin = b.add(b.mul(tiles.n, v.splat(b.mul(f.cout, plane_size))),
                   b.add(b.mul(tiles.y0, v.splat(f.wo)), tiles.x0))
    offsets = [[b.add(origin, v.splat(b.add(b.mul(i64(a), f.wo), i64(j)))) for j in range(m)]
               for a in range(m)]
    at = matrices(m)[2]
    column = b.mul(tiles.part, i64(lanes))
    whole = None
    if not _gathers_kept() and lanes % m == 0:
        # every lane a tile whose m x m outputs are all inside the image
        edge = v.ints([m] * lanes)
        inside = b.and_(tiles.valid, b.and_(
            b.icmp_signed("<=", b.add(tiles.y0, edge), v.splat(f.ho)),
            b.icmp_signed("<=", b.add(tiles.x0, edge), v.splat(f.wo))))
        flat = ir.IntType(lanes)
        whole = b.icmp_unsigned("==", b.bitcast(inside, flat), ir.Constant(flat, -1))
    mr = gemm.mr()
    with k.loop(0, f.cout, "o") as o:
        # M[o // MR][xi][o % MR]: an output channel's alpha^2 rows at constant strides
        row = b.add(b.mul(b.udiv(o, i64(mr)), i64(alpha * alpha * mr)), b.urem(o, i64(mr)))
        first = k.gep(products, dt, b.add(b.mul(row, i64(variant.width)), column))
        loaded = [[b.load(k.gep(first, dt, i64(xi * mr * variant.width)), typ=v.vec,
                          align=vector_bytes())
                   for xi in range(x1 * alpha, (x1 + 1) * alpha)]
                  for x1 in range(alpha)]
        y = _transform(b, at, loaded, at, v.scale)
        plane = k.gep(out, dt, b.mul(o, plane_size))
        flags = b.load(bad, typ=v.mask)
        for a in range(m):
            for j in range(m):
                mask = b.and_(out_row[a], out_col[j])
                finite = b.fcmp_ordered("<", b.call(v.fabs, [y[a][j]]), inf)
                flags = b.or_(flags, b.and_(mask, b.not_(finite)))
        b.store(flags, bad)

        def scatters():
            for a in range(m):
                for j in range(m):
                    mask = b.and_(out_row[a], out_col[j])
                    where = v.pointers(plane, offsets[a][j])
                    b.call(v.scatter, [y[a][j], where, v.size, mask])
        if whole is None:
            scatters()
        else:
            with b.if_else(whole, likely=True) as (then, otherwise):
                with then:
                    _tile_rows(k, v, variant, f, plane, origin, y)
                with otherwise:
                    scatters()


def _tile_rows(k: Kernel, v: _Vec, variant: Variant, f: _Fields, plane, origin, y) -> None:
    """The outputs y[a][j] (lane = tile) of a block whose tiles are all inside the image,
    stored a tile row at a time where a scatter would be a branch and a store per lane (no
    AVX-512): y's vectors transposed in registers, lanes / m output rows of m at a time, so
    each lane's row is one vector store."""
    b, lanes, m = k.b, v.lanes, variant.m
    group = min(m, lanes // m)
    undefined = ir.Constant(v.vec, ir.Undefined)
    starts = [b.sext(b.extract_element(origin, ir.Constant(I32, lane)), I64)
              for lane in range(lanes)]
    size = int(v.size.constant)
    for a0 in range(0, m, group):
        block = [y[a][j] for a in range(a0, a0 + group) for j in range(m)]
        rows = transpose(b, block + [undefined] * (lanes - len(block)))
        for lane in range(lanes):
            for step in range(group):
                values = b.shuffle_vector(rows[lane], undefined,
                                          ir.Constant(ir.VectorType(I32, m),
                                                      list(range(step * m, step * m + m))))
                at = b.add(starts[lane], b.mul(i64(a0 + step), f.wo))
                b.store(values, b.gep(plane, [at], source_etype=v.t), align=size)


def _exact(k: Kernel, variant: Variant, f: _Fields, image, weight, out, t0, end) -> None:
    """Tiles [t0, min(t0 + NR, end)) of the batch summed term by term, as the reference: the
    forward convolution multiplies the zero padding (inf * 0 is NaN), the input gradient
    only the gradient's own values. Run-time loops throughout: the path is taken only for
    tiles with an inf or NaN, and unrolled it was half of the kernel's compile time."""
    b = k.b
    dt = np.dtype(variant.dtype)
    zero = ir.Constant(llvm_type(dt), 0.0)
    total = k.alloca(llvm_type(dt))
    m = i64(variant.m)
    stop = smin(b, b.add(t0, i64(variant.width)), end)
    with k.loop(t0, stop, "t") as tile:
        n, local = (op(tile, b.mul(f.tiles_y, f.tiles_x)) for op in (b.udiv, b.urem))
        ty, tx = b.udiv(local, f.tiles_x), b.urem(local, f.tiles_x)
        with k.loop(0, f.cout, "o") as o:
            dst = b.mul(b.add(b.mul(n, f.cout), o), b.mul(f.ho, f.wo))
            y0, x0 = b.mul(ty, m), b.mul(tx, m)
            with (k.loop(y0, smin(b, b.add(y0, m), f.ho), "y") as y,
                  k.loop(x0, smin(b, b.add(x0, m), f.wo), "x") as x):
                b.store(zero, total)
                with (k.loop(0, f.cin, "ec") as c, k.loop(0, KERNEL, "ei") as i,
                      k.loop(0, KERNEL, "ej") as j):
                    src = b.mul(b.add(b.mul(n, f.cin), c), b.mul(f.h, f.w))
                    iy = b.add(y, b.sub(i, f.ph))
                    ix = b.add(x, b.sub(j, f.pw))
                    ok = b.and_(b.icmp_unsigned("<", iy, f.h),
                                b.icmp_unsigned("<", ix, f.w))
                    at = b.select(ok, b.add(src, b.add(b.mul(iy, f.w), ix)), i64(0))
                    value = b.select(ok, k.load(image, dt, at), zero)
                    wt = k.load(weight, dt, _tap(b, variant, f, o, c, i, j))
                    acc = b.load(total, typ=llvm_type(dt))
                    new = b.fadd(acc, b.fmul(wt, value))
                    b.store(new if not variant.flipped else b.select(ok, new, acc), total)
                k.store(b.load(total, typ=llvm_type(dt)), out, dt,
                        b.add(dst, b.add(b.mul(y, f.wo), x)))


def _tap(b, variant: Variant, f: _Fields, o, c, i, j):
    """The flat index of tap (i, j) (run-time values) of output channel o's filter over
    input channel c."""
    last = i64(KERNEL - 1)
    if variant.flipped:  # w[c, o, 2 - i, 2 - j]
        return b.add(b.mul(b.add(b.mul(c, f.cout), o), i64(KERNEL * KERNEL)),
                     b.add(b.mul(b.sub(last, i), i64(KERNEL)), b.sub(last, j)))
    return b.add(b.mul(b.add(b.mul(o, f.cin), c), i64(KERNEL * KERNEL)),
                 b.add(b.mul(i, i64(KERNEL)), j))
