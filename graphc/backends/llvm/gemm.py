"""A packed, register-blocked GEMM: C[batch] (M x N) = A[batch] (M x K) @ B[batch] (K x N)
for float32 and float64, the engine behind matmul and the three convolution ops.

The GEMM code exists once per module and variant (compute dtype, operand dtypes, kind of
B): a driver function `gc_gemm_*` parameterized at run time by a per-site descriptor (a
constant i64 array: shapes, cache blocks, strides, index maps), so each call site is one
call plus its epilogue, and the module does not grow with the number of matmuls.

A micro-kernel keeps an MR x NR tile of C in vector registers (SSA phis, explicit
`llvm.fma`) while it runs over packed panels: A in panels of MR rows, B in panels of NR
columns, both k-major, packed from their operands into per-thread scratch. A's element
(r, p) is at r * row stride + cols(p) (packed with vector loads, in transposed blocks where
its columns are contiguous; an A block that only a few column panels use is read in
place); B is either strided (packed with vector loads, in transposed blocks where its
depths are contiguous) or zero-padded image patches (im2col without the copy: masked
contiguous loads where a panel's columns or its depths run along an image row, masked
gathers otherwise). Index maps (`Affine`) are tabulated per cache block with carried digits
instead of divisions. Panels past the matrix edge are packed with zeros, and partial tiles
go through a small scratch tile. Each C element sums its K terms in KC blocks in a fixed
order, so results do not depend on which thread computes a block: the threads split
(batch, column block, row block) items, and the caller runs its epilogue over the same
items after the driver returns.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.irtypes import I1, I8, I32, I64, PTR, VOID, const, convert, i64, llvm_type
from graphc.backends.llvm.kernel import Kernel, decompose

MR = 8  # rows of the register tile
VECTOR_BYTES = 64  # one zmm register
TILE_VECTORS = 2  # vectors per tile row: NR = 32 float32 or 16 float64
KC, MC, NC = 512, 128, 1024  # cache blocks: depth, rows, columns
MIN_ITEMS = 4  # split smaller problems into this many items where possible (threads)
SCRATCH_SLOTS = 8  # per-thread scratch regions; threads beyond them sit out a GEMM
MAX_BATCH = 4  # batch dims a descriptor holds (more are folded where strides allow)
DIGITS = 3  # digits of an Affine index map
# A blocks used by at most this many column panels are read in place, not packed: rows
# whose depths are contiguous, other linear layouts (a transposed A packs cheaply).
IN_PLACE_PANELS = (4, 2)
MIN_RUN = 8  # image-row runs along the depth at least this long are packed by transposes


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
        # Row blocks of equal size, an even number of them (two threads share them alike).
        m_blocks = -(-m // MC)
        m_blocks += m_blocks % 2 if m_blocks > 1 else 0
        mc, nc = _up(-(-m // m_blocks), MR), min(NC, _up(n, width))
        while batch * -(-m // mc) * -(-n // nc) < MIN_ITEMS:
            if mc >= 2 * MR:  # rows first: B is then packed once per column block
                mc = _up(mc // 2, MR)
            elif nc >= 2 * width:
                nc = _up(nc // 2, width)
            else:
                break
        return Blocking(mc, nc, max(1, min(KC, k)))

    def layout(self, dtype: np.dtype) -> dict[str, int]:
        """Byte offsets in one thread's scratch: the packed A block and B panels, a C tile,
        the A column table (kc i64), B's row tables (3 x kc i64) and column tables
        (3 x nc i32); "end" is the size."""
        size = np.dtype(dtype).itemsize
        parts = {"a_pack": self.mc * self.kc * size,
                 "b_pack": self.nc * self.kc * size,
                 "tile": MR * nr(dtype) * size, "a_cols": 8 * self.kc,
                 "b_rows": 3 * 8 * self.kc, "b_cols": 3 * 4 * self.nc}
        out, at = {}, 0
        for name, nbytes in parts.items():
            out[name] = at
            at += _up(nbytes, VECTOR_BYTES)
        out["end"] = at
        return out


def scratch_bytes(batch: int, m: int, n: int, k: int, dtype: np.dtype) -> int:
    """The scratch a GEMM of this shape needs, for every thread slot."""
    if m * n * batch == 0:
        return 0
    return SCRATCH_SLOTS * Blocking.of(batch, m, n, k, dtype).layout(dtype)["end"]


@dataclass(frozen=True)
class Affine:
    """`terms` integers as linear functions of an index's mixed-radix digits over `dims`
    (at most three; the first digit unbounded): digit d adds digit * coeffs[d][t] to term
    t, on top of `base`."""

    dims: tuple[int, ...]
    coeffs: tuple[tuple[int, ...], ...]
    base: tuple[int, ...] | None = None

    def fields(self, terms: int) -> list[int]:
        """[dim 1, dim 2, coeffs digit-major (DIGITS x terms), base (terms)], padded with
        digits of extent 1 at the end."""
        pad = DIGITS - len(self.dims)
        dims = list(self.dims[1:]) + [1] * pad
        coeffs = [c for row in self.coeffs for c in row] + [0] * (pad * terms)
        return dims + coeffs + list(self.base or (0,) * terms)


@dataclass(frozen=True)
class Strided:
    """A matrix operand at ptr[batch part + row * row_stride + col * col_stride]."""

    ptr: ir.Value
    dtype: np.dtype
    batch_strides: tuple[int, ...]
    row_stride: int
    col_stride: int


@dataclass(frozen=True)
class Rows:
    """An A operand at ptr[batch part + row * row_stride + cols(col)] (cols: one term)."""

    ptr: ir.Value
    dtype: np.dtype
    batch_strides: tuple[int, ...]
    row_stride: int
    cols: Affine


@dataclass(frozen=True)
class Patches:
    """A B operand of zero-padded images: ptr[batch part + offset + iy * width + ix], where
    a row's and a column's Affine give (offset, iy, ix) terms that add up; anything outside
    [0, height) x [0, width) reads as zero."""

    ptr: ir.Value
    dtype: np.dtype
    size: int  # elements of the operand (gathers take 32-bit indices)
    batch_strides: tuple[int, ...]
    height: int
    width: int
    rows: Affine
    cols: Affine


def strided(ptr, dtype, batch_strides, row_stride: int, col_stride: int) -> Strided:
    return Strided(ptr, np.dtype(dtype), tuple(batch_strides), row_stride, col_stride)


@dataclass
class Gemm:
    """One GEMM: shapes, operands (A: Strided or Rows; B: Strided or Patches), where C
    goes (contiguous rows of ldc elements, batch b at b * c_batch_stride), and an
    epilogue(batch index, r0, r1, c0, c1) run on each finished C block."""

    batch: tuple[int, ...]
    m: int
    n: int
    k: int
    dtype: np.dtype
    a: Strided | Rows
    b: Strided | Patches
    c: ir.Value
    ldc: int
    c_batch_stride: int
    epilogue: object = None


# ----- the descriptor ---------------------------------------------------------------------
_AFFINE1 = 2 + DIGITS + 1
_AFFINE3 = 2 + 3 * DIGITS + 3
_LAYOUT = [("m", 1), ("n", 1), ("k", 1), ("ldc", 1), ("c_batch", 1), ("mc", 1), ("nc", 1),
           ("kc", 1), ("m_blocks", 1), ("n_blocks", 1), ("items", 1), ("slot", 1),
           ("b_pack", 1), ("tile", 1), ("a_cols", 1), ("b_rows", 1), ("b_cols", 1),
           ("batch", MAX_BATCH), ("a_batch", MAX_BATCH), ("b_batch", MAX_BATCH),
           ("a_rs", 1), ("a_cs", 1), ("a_map", _AFFINE1), ("b_rs", 1), ("b_cs", 1), ("height", 1),
           ("width", 1), ("b_runs", 1), ("b_row_map", _AFFINE3), ("b_col_map", _AFFINE3)]
_FIELDS: dict[str, tuple[int, int]] = {}
for _name, _count in _LAYOUT:
    _FIELDS[_name] = (sum(c for _, c in _FIELDS.values()), _count)


def _descriptor(g: Gemm, blocks: Blocking) -> list[int]:
    dtype = np.dtype(g.dtype)
    layout = blocks.layout(dtype)
    batch = int(np.prod(g.batch, dtype=np.int64))
    m_blocks, n_blocks = -(-g.m // blocks.mc), -(-g.n // blocks.nc)
    pad = MAX_BATCH - len(g.batch)
    a = g.a if isinstance(g.a, Rows) else Rows(
        g.a.ptr, g.a.dtype, g.a.batch_strides, g.a.row_stride, Affine((0,), ((g.a.col_stride,),)))
    values = {"m": g.m, "n": g.n, "k": g.k, "ldc": g.ldc, "c_batch": g.c_batch_stride,
              "mc": blocks.mc, "nc": blocks.nc, "kc": blocks.kc, "m_blocks": m_blocks,
              "n_blocks": n_blocks, "items": batch * m_blocks * n_blocks,
              "slot": layout["end"], "b_pack": layout["b_pack"], "tile": layout["tile"],
              "a_cols": layout["a_cols"], "b_rows": layout["b_rows"],
              "b_cols": layout["b_cols"], "batch": [1] * pad + list(g.batch),
              "a_batch": [0] * pad + list(a.batch_strides),
              "b_batch": [0] * pad + list(g.b.batch_strides),
              "a_rs": a.row_stride, "a_cs": _linear_stride(a.cols),
              "a_map": a.cols.fields(1)}
    if isinstance(g.b, Patches):
        values.update(height=g.b.height, width=g.b.width, b_row_map=g.b.rows.fields(3),
                      b_col_map=g.b.cols.fields(3), b_runs=int(_depth_runs(g.b.rows)))
    else:
        values.update(b_rs=g.b.row_stride, b_cs=g.b.col_stride)
    out = [0] * sum(c for _, c in _LAYOUT)
    for name, value in values.items():
        at, count = _FIELDS[name]
        value = list(value) if isinstance(value, list) else [value]
        assert len(value) == count, name
        out[at:at + count] = [int(v) for v in value]
    return out


def _linear_stride(cols: Affine) -> int:
    """The column stride of an A whose column offsets are col * stride, else 0."""
    return cols.coeffs[0][0] if len(cols.dims) == 1 and not any(cols.base or ()) else 0


def _depth_runs(rows: Affine) -> bool:
    """Whether consecutive depths of an image-patch B step along image rows (the weight
    gradient's depth runs over output pixels, stride 1) in runs worth vector loads."""
    return rows.dims[-1] >= MIN_RUN and tuple(rows.coeffs[-1]) == (0, 0, 1)


def _fold_batch(g: Gemm) -> Gemm:
    """The same GEMM with adjacent batch dims merged while more than MAX_BATCH remain and
    both operands step through them as one axis."""
    batch, sa, sb = list(g.batch), list(g.a.batch_strides), list(g.b.batch_strides)
    d = len(batch) - 2
    while len(batch) > MAX_BATCH and d >= 0:
        if all(s[d] == s[d + 1] * batch[d + 1] for s in (sa, sb)):
            batch[d:d + 2] = [batch[d] * batch[d + 1]]
            sa[d:d + 2], sb[d:d + 2] = [sa[d + 1]], [sb[d + 1]]
        d = min(d, len(batch) - 2) - 1 if len(batch) > MAX_BATCH else d
    if len(batch) > MAX_BATCH:
        raise NotImplementedError(f"llvm backend: a GEMM with {len(g.batch)} batch dims "
                                  f"{g.batch} whose operand strides do not merge to "
                                  f"{MAX_BATCH}")
    a = _with_batch(g.a, tuple(sa))
    return Gemm(tuple(batch), g.m, g.n, g.k, g.dtype, a, _with_batch(g.b, tuple(sb)), g.c,
                g.ldc, g.c_batch_stride, g.epilogue)


def _with_batch(operand, strides):
    return replace(operand, batch_strides=strides)


def emit(k: Kernel, g: Gemm, scratch: ir.Value) -> None:
    """The calling thread's share of the GEMM: a call of the module's driver for this
    variant with the site's descriptor, then the epilogue over the blocks it computed."""
    batch = int(np.prod(g.batch, dtype=np.int64))
    if batch * g.m * g.n == 0:
        return
    if len(g.batch) > MAX_BATCH:
        g = _fold_batch(g)
    dtype = np.dtype(g.dtype)
    blocks = Blocking.of(batch, g.m, g.n, g.k, dtype)
    words = _descriptor(g, blocks)
    typ = ir.ArrayType(I64, len(words))
    module = k.mc.module
    desc = ir.GlobalVariable(module, typ, module.get_unique_name("gc_gemm_desc"))
    desc.global_constant = True
    desc.linkage = "internal"
    desc.initializer = ir.Constant(typ, words)
    gathers = isinstance(g.b, Patches) and g.b.size < 2 ** 31 and g.b.dtype == dtype
    driver = _driver(k.mc, dtype, np.dtype(g.a.dtype), np.dtype(g.b.dtype),
                     "patches" if isinstance(g.b, Patches) else "strided", gathers)
    k.b.call(driver, [desc, g.a.ptr, g.b.ptr, g.c, scratch, k.tid, k.nthreads, k.step])
    if g.epilogue is None:
        return
    m_blocks, n_blocks = -(-g.m // blocks.mc), -(-g.n // blocks.nc)
    shape = _Shape(i64(batch * m_blocks * n_blocks), i64(m_blocks), i64(n_blocks),
                   i64(blocks.mc), i64(blocks.nc), i64(g.m), i64(g.n), nr(dtype))
    with _groups(k, shape) as group, k.when(k.b.icmp_signed("<", group.lo, group.hi)):
        index = decompose(k.b, group.flat_batch, list(g.batch)) if g.batch else []
        row0, row1 = group.rows(k.b)
        g.epilogue(index, row0, row1, group.jc, k.b.add(group.jc, group.nc))


@dataclass
class _Shape:
    items: ir.Value
    m_blocks: ir.Value
    n_blocks: ir.Value
    mc: ir.Value
    nc: ir.Value
    m: ir.Value
    n: ir.Value
    width: int  # columns of a B panel (NR)


@dataclass
class _Group:
    """One (batch, column block) of a thread's items: its row blocks [lo, hi) and the B
    panels [panel_lo, panel_hi) of the column block it packs. With `shared`, the packed
    panels are read by every thread; `active` threads have a scratch slot."""

    shape: _Shape
    index: ir.Value
    flat_batch: ir.Value
    jc: ir.Value
    nc: ir.Value
    lo: ir.Value
    hi: ir.Value
    panel_lo: ir.Value
    panel_hi: ir.Value
    shared: ir.Value
    active: ir.Value

    def rows(self, b) -> tuple[ir.Value, ir.Value]:
        return (b.mul(self.lo, self.shape.mc),
                _smin(b, b.mul(self.hi, self.shape.mc), self.shape.m))


@contextlib.contextmanager
def _groups(k: Kernel, s: _Shape):
    """Loop over the calling thread's items grouped by (batch, column block); the same
    split in the driver and in the caller's epilogue. Threads take contiguous runs of
    items and pack the B panels of their groups, unless that would have several threads
    pack the same panels (a group's row blocks split between them): then every thread
    visits every group, packs its share of the panels and computes its share of the row
    blocks against all of them (`shared`: a barrier separates packing from computing)."""
    b = k.b
    workers = _smin(b, k.nthreads, i64(SCRATCH_SLOTS))
    active = b.icmp_signed("<", k.tid, workers)
    groups = b.sdiv(s.items, s.m_blocks)
    shared = b.and_(b.and_(b.icmp_signed(">", workers, i64(1)),
                           b.icmp_signed(">=", s.m_blocks, workers)),
                    b.icmp_signed("!=", b.srem(groups, workers), i64(0)))
    start, stop = _share(b, s.items, k.tid, workers, active)
    row_lo, row_hi = _share(b, s.m_blocks, k.tid, workers, active)
    first = b.select(shared, i64(0), b.sdiv(start, s.m_blocks))
    last = b.select(shared, groups, _ceil_div(b, stop, s.m_blocks))
    with k.loop(first, last, "group") as group:
        flat_batch = b.sdiv(group, s.n_blocks)
        jc = b.mul(b.srem(group, s.n_blocks), s.nc)
        nc = _smin(b, s.nc, b.sub(s.n, jc))
        base_item = b.mul(group, s.m_blocks)
        lo = b.sub(_smax(b, start, base_item), base_item)
        hi = b.sub(_smin(b, stop, b.add(base_item, s.m_blocks)), base_item)
        panels = _ceil_div(b, nc, i64(s.width))
        panel_lo, panel_hi = _share(b, panels, k.tid, workers, active)
        yield _Group(s, group, flat_batch, jc, nc, b.select(shared, row_lo, lo),
                     b.select(shared, row_hi, hi), b.select(shared, panel_lo, i64(0)),
                     b.select(shared, panel_hi, panels), shared, active)


def _share(b, total, tid, workers, active) -> tuple[ir.Value, ir.Value]:
    """Thread tid's contiguous share [start, stop) of range(total) among `workers`; empty
    for an inactive thread."""
    chunk = _ceil_div(b, total, workers)
    start = b.select(active, _smin(b, b.mul(tid, chunk), total), total)
    return start, _smin(b, b.add(start, chunk), total)


def _ceil_div(b, x, y):
    return b.sdiv(b.add(x, b.sub(y, i64(1))), y)


def _smin(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _smax(b, x, y):
    return b.select(b.icmp_signed(">", x, y), x, y)


# ----- the driver -------------------------------------------------------------------------
def _driver(mc, dtype: np.dtype, a_dtype: np.dtype, b_dtype: np.dtype, b_kind: str,
            gathers: bool) -> ir.Function:
    """gc_gemm_<variant>(desc, a, b, c, scratch, tid, nthreads, step): one per module and
    variant."""
    name = f"gc_gemm_{dtype.name}_{a_dtype.name}_{b_kind}_{b_dtype.name}" + \
        ("_gather" if gathers else "")
    existing = mc.module.globals.get(name)
    if existing is not None:
        return existing
    k = Kernel(mc, name, 5)
    desc, a_ptr, b_ptr, c_ptr, scratch = k.buffers
    # Threads read B panels other threads packed (after a barrier): scratch is shared.
    scratch.attributes.discard("noalias")
    b = k.b
    f = {}
    for key, (at, count) in _FIELDS.items():
        values = [b.load(b.gep(desc, [i64(at + j)], source_etype=I64), typ=I64)
                  for j in range(count)]
        f[key] = values if count > 1 else values[0]
    slot = b.gep(scratch, [b.mul(k.tid, f["slot"])], source_etype=I8)
    part = {key: b.gep(slot, [f[key]], source_etype=I8)
            for key in ("b_pack", "tile", "a_cols", "b_rows", "b_cols")}
    a_pack = slot
    shape = _Shape(f["items"], f["m_blocks"], f["n_blocks"], f["mc"], f["nc"], f["m"], f["n"],
                   nr(dtype))
    micro = micro_kernel(mc, dtype)
    zero_k = b.icmp_signed("==", f["k"], i64(0))
    with _groups(k, shape) as group:
        index = _decompose(b, group.flat_batch, f["batch"])
        a_base = _dot(b, index, f["a_batch"])
        b_base = _dot(b, index, f["b_batch"])
        c_base = b.mul(group.flat_batch, f["c_batch"])
        jc, nc = group.jc, group.nc
        with k.when(zero_k):
            row0, row1 = group.rows(b)
            _zero_block(k, c_ptr, dtype, f["ldc"], c_base, row0, row1, jc, nc)
        if b_kind == "patches":
            with k.when(group.active):
                _table(k, f["b_col_map"], 3, jc, nc, part["b_cols"], I32, f["nc"])
        blocks = b.sdiv(b.add(f["k"], b.sub(f["kc"], i64(1))), f["kc"])
        with k.loop(0, blocks, "pc") as pcb:
            pc = b.mul(pcb, f["kc"])
            kc = _smin(b, f["kc"], b.sub(f["k"], pc))
            accumulate = b.icmp_signed(">", pcb, i64(0))
            # A shared panel alternates between slot 0's and slot 1's B regions, so one
            # barrier per panel suffices: a thread packs into a region only after the
            # barrier that every thread passes once done with the panel it held before.
            parity = b.and_(b.add(b.mul(group.index, blocks), pcb), i64(1))
            shared_pack = b.gep(scratch, [b.add(b.mul(parity, f["slot"]), f["b_pack"])],
                                source_etype=I8)
            b_pack = b.select(group.shared, shared_pack, part["b_pack"])
            with k.when(group.active):
                _table(k, f["a_map"], 1, pc, kc, part["a_cols"], I64, f["kc"])
                panels = (group.panel_lo, group.panel_hi)
                if b_kind == "patches":
                    _table(k, f["b_row_map"], 3, pc, kc, part["b_rows"], I64, f["kc"])
                    _pack_patches(k, f, b_ptr, b_dtype, dtype, b_base, jc, panels, kc,
                                  b_pack, part["b_rows"], part["b_cols"], gathers)
                else:
                    _pack_strided_b(k, f, b_ptr, b_dtype, dtype, b_base, jc, panels, pc, kc,
                                    b_pack)
            with k.when(group.shared):
                b.call(mc.barrier, [k.nthreads])  # every share of the panel is packed
            # An A block used by few column panels is not worth packing: full row panels
            # of a linear A of the compute dtype are read in place (IN_PLACE_PANELS).
            in_place = None
            if a_dtype == dtype:
                panels = b.select(b.icmp_signed("==", f["a_cs"], i64(1)),
                                  i64(IN_PLACE_PANELS[0]), i64(IN_PLACE_PANELS[1]))
                when = b.and_(b.icmp_signed("!=", f["a_cs"], i64(0)),
                              b.icmp_signed("<=", nc, b.mul(panels, i64(nr(dtype)))))
                in_place = _InPlaceA(when, None, f["a_rs"], f["a_cs"])
            with k.loop(group.lo, group.hi, "ic") as icb:
                ic = b.mul(icb, f["mc"])
                m_here = _smin(b, f["mc"], b.sub(f["m"], ic))
                if in_place is None:
                    _pack_a(k, f, a_ptr, a_dtype, dtype, a_base, ic, m_here, kc, a_pack,
                            part["a_cols"])
                else:
                    at = b.add(a_base, b.add(b.mul(ic, f["a_rs"]), b.mul(pc, f["a_cs"])))
                    in_place.rows = k.gep(a_ptr, a_dtype, at)
                    # Only a last partial panel is packed, at its place in the block.
                    whole = b.select(in_place.when, b.mul(b.sdiv(m_here, i64(MR)), i64(MR)),
                                     i64(0))
                    _pack_a(k, f, a_ptr, a_dtype, dtype, a_base, b.add(ic, whole),
                            b.sub(m_here, whole), kc, k.gep(a_pack, dtype, b.mul(whole, kc)),
                            part["a_cols"])
                _tiles(k, f["ldc"], c_ptr, micro, a_pack, b_pack, part["tile"],
                       c_base, ic, m_here, jc, nc, kc, accumulate, dtype, in_place)
    k.finish()
    return k.function


def _decompose(b, flat, dims: list) -> list:
    """The multi-index of a flat index over run-time dims (row-major)."""
    index = []
    for d in reversed(dims[1:]):
        index.append(b.urem(flat, d))
        flat = b.udiv(flat, d)
    index.append(flat)
    return index[::-1]


def _dot(b, index, strides):
    total = i64(0)
    for i, s in zip(index, strides):
        total = b.add(total, b.mul(i, s))
    return total


def _table(k: Kernel, fields: list, terms: int, start, count, dest, typ: ir.Type,
           stride) -> None:
    """dest[t * stride + x] = term t of an Affine (fields as Affine.fields) at start + x
    for x in [0, count): digits are carried from one index to the next, so only the
    first index is divided."""
    b = k.b
    dim1, dim2 = fields[0], fields[1]
    coeffs = [fields[2 + d * terms:2 + (d + 1) * terms] for d in range(DIGITS)]
    base = fields[2 + DIGITS * terms:]
    slots = [k.alloca(I64) for _ in range(DIGITS)]
    low = b.urem(start, dim2)
    rest = b.udiv(start, dim2)
    for slot, value in zip(slots, (b.udiv(rest, dim1), b.urem(rest, dim1), low)):
        b.store(value, slot)
    with k.loop(0, count, "tab") as x:
        digits = [b.load(s, typ=I64) for s in slots]
        for t in range(terms):
            value = base[t]
            for d in range(DIGITS):
                value = b.add(value, b.mul(digits[d], coeffs[d][t]))
            if typ != I64:
                value = b.trunc(value, typ)
            b.store(value, b.gep(dest, [b.add(b.mul(i64(t), stride), x)], source_etype=typ))
        d2 = b.add(digits[2], i64(1))
        carry2 = b.icmp_signed("==", d2, dim2)
        d1 = b.add(digits[1], b.zext(carry2, I64))
        carry1 = b.icmp_signed("==", d1, dim1)
        b.store(b.select(carry2, i64(0), d2), slots[2])
        b.store(b.select(carry1, i64(0), d1), slots[1])
        b.store(b.add(digits[0], b.zext(carry1, I64)), slots[0])


def _zero_block(k, c, dtype, ldc, c_base, row0, row1, jc, nc) -> None:
    b = k.b
    zero = const(dtype, 0)
    with k.loop(row0, row1, "zr") as r:
        at = b.add(c_base, b.add(b.mul(r, ldc), jc))
        with k.loop(0, nc, "zc") as col:
            k.store(zero, c, dtype, b.add(at, col))


def _pack_a(k, f, ptr, src, dtype, base, start, count, kc, dest, cols) -> None:
    """Pack rows [start, start+count) of A over the depth block (column offsets in the
    `cols` table) into panels of MR: dest[q * MR * kc + p * MR + t]. Rows past M pack
    zeros. Full panels of the compute dtype are read with vectors: one load per depth
    when the panel's rows are adjacent (a transposed A), MR x MR blocks transposed with
    shuffles when its columns are; anything else element by element."""
    b = k.b
    with k.loop(0, b.sdiv(b.add(count, i64(MR - 1)), i64(MR)), "panel") as q:
        first = b.add(start, b.mul(q, i64(MR)))
        panel = b.mul(q, b.mul(kc, i64(MR)))
        valid = b.sub(f["m"], first)
        full = b.icmp_signed(">=", valid, i64(MR))
        row_base = b.add(base, b.mul(first, f["a_rs"]))
        adjacent_rows = b.and_(full, b.icmp_signed("==", f["a_rs"], i64(1)))
        adjacent_cols = b.and_(full, b.icmp_signed("==", f["a_cs"], i64(1)))
        if src != dtype:  # converting operands are packed element by element
            adjacent_rows = adjacent_cols = ir.Constant(I1, 0)
        vec = ir.VectorType(llvm_type(dtype), MR)
        with b.if_else(adjacent_rows) as (by_depth, other):
            with by_depth:
                with k.loop(0, kc, "p") as p:
                    at = b.add(row_base, k.load(cols, np.dtype("int64"), p))
                    values = b.load(k.gep(ptr, src, at), typ=vec, align=src.itemsize)
                    b.store(values, k.gep(dest, dtype, b.add(panel, b.mul(p, i64(MR)))),
                            align=src.itemsize * MR)
            with other:
                with b.if_else(adjacent_cols) as (by_blocks, by_elements):
                    with by_blocks:
                        blocks = b.sdiv(kc, i64(MR))
                        with k.loop(0, blocks, "pblock") as block:
                            p = b.mul(block, i64(MR))
                            at = b.add(row_base, k.load(cols, np.dtype("int64"), p))
                            rows = [b.load(k.gep(ptr, src, b.add(at, b.mul(i64(t), f["a_rs"]))),
                                           typ=vec, align=src.itemsize) for t in range(MR)]
                            for d, values in enumerate(transpose(b, rows)):
                                slot = b.add(panel, b.mul(b.add(p, i64(d)), i64(MR)))
                                b.store(values, k.gep(dest, dtype, slot),
                                        align=src.itemsize * MR)
                        _pack_a_elements(k, f, ptr, src, dtype, base, first, valid,
                                         b.mul(blocks, i64(MR)), kc, dest, panel, cols, full)
                    with by_elements:
                        _pack_a_elements(k, f, ptr, src, dtype, base, first, valid, i64(0),
                                         kc, dest, panel, cols, full)


def _pack_a_elements(k, f, ptr, src, dtype, base, first, valid, p0, kc, dest, panel, cols,
                     full) -> None:
    """Depths [p0, kc) of one A panel, element by element (rows past M as zeros)."""
    b = k.b
    zero = const(dtype, 0)
    with b.if_else(full) as (whole, partial):
        for guarded in (whole, partial):
            with guarded:
                edge = guarded is partial
                idx = [b.add(first, i64(t)) for t in range(MR)]
                if edge:
                    last = b.sub(f["m"], i64(1))
                    idx = [_smin(b, x, last) for x in idx]
                rows = [b.add(base, b.mul(x, f["a_rs"])) for x in idx]
                with k.loop(p0, kc, "p") as p:
                    col = k.load(cols, np.dtype("int64"), p)
                    at = b.add(panel, b.mul(p, i64(MR)))
                    for t, row in enumerate(rows):
                        v = convert(b, k.load(ptr, src, b.add(row, col)), src, dtype)
                        if edge:
                            v = b.select(b.icmp_signed("<", i64(t), valid), v, zero)
                        k.store(v, dest, dtype, b.add(at, i64(t)))


def _pack_strided_b(k, f, ptr, src, dtype, base, start, panels, pc, kc, dest) -> None:
    """Pack the panels [lo, hi) = `panels` of NR columns from column `start` of a strided
    B, over depth [pc, pc+kc): dest[q * NR * kc + p * NR + t]; columns past N as zeros.
    Full panels of the compute dtype are read with vectors: one load per depth when the
    columns are adjacent, lanes x lanes blocks transposed with shuffles when the depths
    are (a transposed B)."""
    b = k.b
    width = nr(dtype)
    n_lanes = lanes(dtype)
    vec_src = ir.VectorType(llvm_type(src), width)
    with k.loop(*panels, "panel") as q:
        first = b.add(start, b.mul(q, i64(width)))
        panel = b.mul(q, b.mul(kc, i64(width)))
        valid = b.sub(f["n"], first)
        full = b.icmp_signed(">=", valid, i64(width))
        adjacent_cols = b.and_(full, b.icmp_signed("==", f["b_cs"], i64(1)))
        adjacent_rows = b.and_(full, b.icmp_signed("==", f["b_rs"], i64(1)))
        if src != dtype:  # converting operands are packed element by element
            adjacent_cols = adjacent_rows = ir.Constant(I1, 0)
        with b.if_else(adjacent_cols) as (by_depth, other):
            with by_depth:
                with k.loop(0, kc, "p") as p:
                    row = b.add(base, b.mul(b.add(pc, p), f["b_rs"]))
                    v = b.load(k.gep(ptr, src, b.add(row, first)), typ=vec_src,
                               align=src.itemsize)
                    slot = k.gep(dest, dtype, b.add(panel, b.mul(p, i64(width))))
                    b.store(v, slot, align=VECTOR_BYTES)
            with other:
                with b.if_else(adjacent_rows) as (by_blocks, by_elements):
                    with by_blocks:
                        blocks = b.sdiv(kc, i64(n_lanes))
                        vec = ir.VectorType(llvm_type(dtype), n_lanes)
                        with k.loop(0, blocks, "pblock") as block:
                            p = b.mul(block, i64(n_lanes))
                            at = b.add(base, b.add(pc, p))
                            for part in range(0, width, n_lanes):
                                columns = [
                                    b.load(k.gep(ptr, src, b.add(at, b.mul(
                                        b.add(first, i64(part + c)), f["b_cs"]))),
                                        typ=vec, align=src.itemsize)
                                    for c in range(n_lanes)]
                                for d, values in enumerate(transpose(b, columns)):
                                    slot = b.add(panel, b.add(
                                        b.mul(b.add(p, i64(d)), i64(width)), i64(part)))
                                    b.store(values, k.gep(dest, dtype, slot),
                                            align=VECTOR_BYTES)
                        _pack_b_elements(k, f, ptr, src, dtype, base, first, valid,
                                         b.mul(blocks, i64(n_lanes)), pc, kc, dest, panel)
                    with by_elements:
                        _pack_b_elements(k, f, ptr, src, dtype, base, first, valid, i64(0),
                                         pc, kc, dest, panel)


def _pack_b_elements(k, f, ptr, src, dtype, base, first, valid, p0, pc, kc, dest,
                     panel) -> None:
    """Depths [p0, kc) of one strided B panel, element by element (columns past N as
    zeros)."""
    b = k.b
    width = nr(dtype)
    zero = const(dtype, 0)
    last = b.sub(f["n"], i64(1))
    cols = [b.mul(_smin(b, b.add(first, i64(t)), last), f["b_cs"]) for t in range(width)]
    with k.loop(p0, kc, "p") as p:
        row = b.add(base, b.mul(b.add(pc, p), f["b_rs"]))
        at = b.add(panel, b.mul(p, i64(width)))
        for t, col in enumerate(cols):
            v = convert(b, k.load(ptr, src, b.add(row, col)), src, dtype)
            v = b.select(b.icmp_signed("<", i64(t), valid), v, zero)
            k.store(v, dest, dtype, b.add(at, i64(t)))


def _pack_patches(k, f, ptr, src, dtype, base, start, panels, kc, dest, rows, cols,
                  gathers: bool) -> None:
    """Pack the panels [lo, hi) = `panels` of NR columns from column `start` of an
    image-patch B (see _pack_strided_b), from the row tables (3 x kc i64: offset, dy, dx
    of each depth) and column tables (3 x nc i32, from column `start`): masked gathers, or
    element by element when the operand is too big for 32-bit indices or needs a
    conversion."""
    b = k.b
    width = nr(dtype)
    height, image_width = f["height"], f["width"]
    with k.loop(*panels, "panel") as q:
        local = b.mul(q, i64(width))
        panel = b.mul(q, b.mul(kc, i64(width)))
        limit = b.sub(f["n"], b.add(start, local))
        if gathers:
            _gather_panel(k, f, ptr, src, base, local, limit, kc, dest, panel, rows, cols)
        else:
            _scalar_patch_panel(k, f, ptr, src, dtype, base, local, limit, kc, dest, panel,
                                rows, cols, height, image_width)


class _Vectors:
    """Vector helpers for packing a panel of NR columns of `src`."""

    def __init__(self, k, src: np.dtype, width: int):
        self.b, self.width = k.b, width
        self.ivec = ir.VectorType(I32, width)
        self.t = llvm_type(src)
        self.vec = ir.VectorType(self.t, width)
        self.mask = ir.VectorType(I1, width)
        self.lane = ir.Constant(self.ivec, list(range(width)))
        self.zero = ir.Constant(self.vec, [0.0] * width)
        self.load = k.mc.function(f"llvm.masked.load.v{width}{_suffix(self.t)}.p0", self.vec,
                                  [PTR, I32, self.mask, self.vec])

    def splat(self, x):
        b = self.b
        one = b.insert_element(ir.Constant(self.ivec, ir.Undefined), b.trunc(x, I32),
                               ir.Constant(I32, 0))
        return b.shuffle_vector(one, ir.Constant(self.ivec, ir.Undefined),
                                ir.Constant(self.ivec, [0] * self.width))


def _gather_panel(k, f, ptr, src, base, local, limit, kc, dest, panel, rows, cols) -> None:
    """One NR-column panel of an image-patch B with vector reads: a masked contiguous load
    per depth when the panel's columns are consecutive pixels of one image row (stride 1,
    the panel within one output row); transposed blocks of masked loads when depths run
    along image rows (b_runs); masked gathers otherwise. All give the same values."""
    b = k.b
    width = nr(src)
    v = _Vectors(k, src, width)

    def column_terms(term):
        at = b.add(b.mul(i64(term), f["nc"]), local)
        return b.load(b.gep(cols, [at], source_etype=I32), typ=v.ivec, align=4)

    columns = [column_terms(term) for term in range(3)]
    offset, dy, dx = columns
    in_matrix = b.icmp_signed("<", v.lane, v.splat(limit))
    first = [b.sext(b.extract_element(c, ir.Constant(I32, 0)), I64) for c in columns]
    one_row = b.and_(b.icmp_signed("==", offset, v.splat(first[0])),
                     b.and_(b.icmp_signed("==", dy, v.splat(first[1])),
                            b.icmp_signed("==", dx, b.add(v.splat(first[2]), v.lane))))
    every = k.mc.function(f"llvm.vector.reduce.and.v{width}i1", I1, [v.mask])
    contiguous = b.call(every, [b.or_(one_row, b.not_(in_matrix))])
    runs = b.icmp_signed("!=", f["b_runs"], i64(0))
    with b.if_else(contiguous) as (row_panel, general):
        with row_panel:
            with k.loop(0, kc, "p") as p:
                r_offset, r_dy, r_dx = _row_terms(k, f, rows, p)
                iy, ix = b.add(first[1], r_dy), b.add(first[2], r_dx)
                inside = b.and_(in_matrix, b.icmp_unsigned("<", b.add(v.splat(ix), v.lane),
                                                           v.splat(f["width"])))
                row_ok = b.icmp_unsigned("<", iy, f["height"])
                inside = b.select(row_ok, inside, ir.Constant(v.mask, [0] * width))
                at = b.add(b.add(base, b.add(r_offset, first[0])),
                           b.add(b.mul(iy, f["width"]), ix))
                at = b.select(row_ok, at, i64(0))  # see _run_packer
                values = b.call(v.load, [b.gep(ptr, [at], source_etype=v.t),
                                         ir.Constant(I32, src.itemsize), inside, v.zero])
                b.store(values, k.gep(dest, src, b.add(panel, b.mul(p, i64(width)))),
                        align=VECTOR_BYTES)
        with general:
            with b.if_else(runs) as (by_runs, by_gathers):
                with by_runs:
                    table = b.gep(cols, [local], source_etype=I32)
                    b.call(_run_packer(k.mc, src),
                           [ptr, dest, rows, table, base, limit, kc, panel, f["nc"], f["kc"],
                            f["height"], f["width"]])
                with by_gathers:
                    _gathers(k, f, v, ptr, src, base, kc, dest, panel, rows, columns,
                             in_matrix)


def _row_terms(k, f, rows, p) -> list:
    """(offset, dy, dx) of depth p from the row tables."""
    return [k.load(rows, np.dtype("int64"), k.b.add(k.b.mul(i64(term), f["kc"]), p))
            for term in range(3)]


def _gathers(k, f, v, ptr, src, base, kc, dest, panel, rows, columns, in_matrix) -> None:
    """Pack a panel with one masked gather of its NR columns per depth."""
    b = k.b
    offset, dy, dx = columns
    gather = k.mc.function(f"llvm.masked.gather.v{v.width}{_suffix(v.t)}.v{v.width}p0", v.vec,
                           [ir.VectorType(PTR, v.width), I32, v.mask, v.vec])
    height, image_width = v.splat(f["height"]), v.splat(f["width"])
    with k.loop(0, kc, "p") as p:
        r_offset, r_dy, r_dx = _row_terms(k, f, rows, p)
        iy, ix = b.add(dy, v.splat(r_dy)), b.add(dx, v.splat(r_dx))
        inside = b.and_(in_matrix, b.and_(b.icmp_unsigned("<", iy, height),
                                          b.icmp_unsigned("<", ix, image_width)))
        at = b.add(b.add(offset, v.splat(b.add(base, r_offset))),
                   b.add(b.mul(iy, image_width), ix))
        pointers = b.gep(ptr, [at], source_etype=v.t)
        pointers.type = ir.VectorType(PTR, v.width)  # llvmlite types a vector GEP as ptr
        values = b.call(gather, [pointers, ir.Constant(I32, src.itemsize), inside, v.zero])
        b.store(values, k.gep(dest, src, b.add(panel, b.mul(p, i64(v.width)))),
                align=VECTOR_BYTES)


def _run_packer(mc, src: np.dtype) -> ir.Function:
    """gc_pack_runs_<type>(src, dest, rows, cols, base, limit, kc, panel, nc, kc_stride,
    height, width): pack a panel whose depths run along image rows. From each depth p, the
    run of up to L = lanes depths on one output row is read per column with one masked
    contiguous load, and each L x L block of columns is transposed with shuffles into L
    depth rows. Whole blocks are stored (rows past the run are rewritten by the next run,
    rows past the panel's end go to its last row before that row's value does). A function
    of its own: inlined, its many live values slowed the driver's other loops twofold."""
    t = llvm_type(src)
    name = f"gc_pack_runs_{t}"
    existing = mc.module.globals.get(name)
    if existing is not None:
        return existing
    fn = ir.Function(mc.module, ir.FunctionType(VOID, [PTR] * 4 + [I64] * 8), name=name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    ptr, dest, rows, cols, base, limit, kc, panel, nc, kc_stride, height, image_width = fn.args
    for arg in (ptr, dest):
        arg.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    n_lanes = lanes(src)
    width = nr(src)
    ivec = ir.VectorType(I32, n_lanes)
    i64vec = ir.VectorType(I64, n_lanes)
    vec = ir.VectorType(t, n_lanes)
    mask = ir.VectorType(I1, n_lanes)
    lane = ir.Constant(ivec, list(range(n_lanes)))
    lane64 = ir.Constant(i64vec, list(range(n_lanes)))
    zero = ir.Constant(vec, [0.0] * n_lanes)
    none = ir.Constant(mask, [0] * n_lanes)
    load = mc.function(f"llvm.masked.load.v{n_lanes}{_suffix(t)}.p0", vec,
                       [PTR, I32, mask, vec])

    def splat(x, typ):
        one = b.insert_element(ir.Constant(typ, ir.Undefined), x, ir.Constant(I32, 0))
        return b.shuffle_vector(one, ir.Constant(typ, ir.Undefined),
                                ir.Constant(ivec, [0] * n_lanes))

    lowest = mc.function("llvm.cttz.i64", I64, [I64, I1])

    def counted(start, name):
        """A loop header: (index phi, body block, exit block); the caller closes it."""
        before = b.block
        head, body, done = (fn.append_basic_block(f"{name}.{part}")
                            for part in ("head", "body", "end"))
        b.branch(head)
        b.position_at_end(head)
        index = b.phi(I64, name)
        index.add_incoming(start, before)
        return index, head, body, done

    # Column blocks of L columns (a loop: unrolled, the code doubled for no gain).
    first, block_head, block_body, blocks_done = counted(i64(0), "block")
    b.cbranch(b.icmp_signed("<", first, i64(width)), block_body, blocks_done)
    b.position_at_end(block_body)
    terms = [[b.sext(b.load(b.gep(cols, [b.add(b.mul(i64(term), nc), b.add(first, i64(c)))],
                                  source_etype=I32), typ=I32), I64) for c in range(n_lanes)]
             for term in range(3)]
    valid = [b.icmp_signed("<", b.add(first, i64(c)), limit) for c in range(n_lanes)]
    p, run_head, run_body, runs_done = counted(i64(0), "run")
    b.cbranch(b.icmp_signed("<", p, kc), run_body, runs_done)
    b.position_at_end(run_body)
    # The run: depths p.. with the same offset and dy and consecutive dx, within kc.
    tables = [b.load(b.gep(rows, [b.add(b.mul(i64(term), kc_stride), p)], source_etype=I64),
                     typ=i64vec, align=8) for term in range(3)]
    r_offset, r_dy, r_dx = (b.extract_element(x, ir.Constant(I32, 0)) for x in tables)
    same = b.and_(b.and_(b.icmp_signed("==", tables[0], splat(r_offset, i64vec)),
                         b.icmp_signed("==", tables[1], splat(r_dy, i64vec))),
                  b.and_(b.icmp_signed("==", tables[2], b.add(splat(r_dx, i64vec), lane64)),
                         b.icmp_signed("<", lane64, splat(b.sub(kc, p), i64vec))))
    bits = b.zext(b.bitcast(same, ir.IntType(n_lanes)), I64)
    run = b.call(lowest, [b.xor(bits, i64(-1)), ir.Constant(I1, 0)])  # lane 0 always set
    in_run = b.icmp_signed("<", lane, splat(b.trunc(run, I32), ivec))
    loaded = []
    for c in range(n_lanes):
        iy = b.add(terms[1][c], r_dy)
        ix = b.add(terms[2][c], r_dx)
        inside = b.and_(in_run, b.icmp_unsigned(
            "<", b.add(splat(b.trunc(ix, I32), ivec), lane),
            splat(b.trunc(image_width, I32), ivec)))
        ok = b.and_(valid[c], b.icmp_unsigned("<", iy, height))
        at = b.add(b.add(base, b.add(r_offset, terms[0][c])),
                   b.add(b.mul(iy, image_width), ix))
        at = b.select(ok, at, i64(0))  # masked-off loads from wild addresses are slow
        loaded.append(b.call(load, [b.gep(ptr, [at], source_etype=t),
                                    ir.Constant(I32, src.itemsize),
                                    b.select(ok, inside, none), zero]))
    # Last depth first, rows past the panel's end clamped to its last row: the valid row
    # stored there comes later (the next panel may be another thread's).
    last_row = b.sub(kc, i64(1))
    for depth, values in reversed(list(enumerate(transpose(b, loaded)))):
        depth_row = _smin(b, b.add(p, i64(depth)), last_row)
        row = b.add(panel, b.mul(depth_row, i64(width)))
        slot = b.gep(dest, [b.add(row, first)], inbounds=True, source_etype=t)
        b.store(values, slot, align=VECTOR_BYTES)
    p.add_incoming(b.add(p, run), b.block)
    b.branch(run_head)
    b.position_at_end(runs_done)
    first.add_incoming(b.add(first, i64(n_lanes)), b.block)
    b.branch(block_head)
    b.position_at_end(blocks_done)
    b.ret_void()
    return fn


def transpose(b, rows: list) -> list:
    """The transpose of a square block given as a list of row vectors, in log2(n) stages
    of two-vector shuffles."""
    n = len(rows)
    rows = list(rows)
    half = n // 2
    while half:
        out = list(rows)
        for i in range(n):
            if i & half:
                continue
            lo, hi = rows[i], rows[i + half]
            out[i] = b.shuffle_vector(lo, hi, ir.Constant(
                ir.VectorType(I32, n), [q if not q & half else n + q - half for q in range(n)]))
            out[i + half] = b.shuffle_vector(lo, hi, ir.Constant(
                ir.VectorType(I32, n), [q + half if not q & half else n + q for q in range(n)]))
        rows = out
        half //= 2
    return rows


def _scalar_patch_panel(k, f, ptr, src, dtype, base, local, limit, kc, dest, panel, rows,
                        cols, height, image_width) -> None:
    b = k.b
    width = nr(dtype)
    zero = const(dtype, 0)
    with k.loop(0, kc, "p") as p:
        r_offset, r_dy, r_dx = (k.load(rows, np.dtype("int64"), b.add(b.mul(i64(term), f["kc"]), p))
                                for term in range(3))
        at_p = b.add(panel, b.mul(p, i64(width)))
        with k.loop(0, width, "t") as t:
            column = b.add(local, t)
            offset, dy, dx = (b.sext(b.load(b.gep(cols, [b.add(b.mul(i64(term), f["nc"]),
                                                                column)], source_etype=I32),
                                            typ=I32), I64) for term in range(3))
            iy, ix = b.add(r_dy, dy), b.add(r_dx, dx)
            inside = b.and_(b.icmp_signed("<", t, limit),
                            b.and_(b.icmp_unsigned("<", iy, height),
                                   b.icmp_unsigned("<", ix, image_width)))
            at = b.add(b.add(base, b.add(r_offset, offset)), b.add(b.mul(iy, image_width), ix))
            v = k.load(ptr, src, b.select(inside, at, i64(0)))
            v = b.select(inside, convert(b, v, src, dtype), zero)
            k.store(v, dest, dtype, b.add(at_p, t))


def _suffix(t: ir.Type) -> str:
    return "f32" if str(t) == "float" else "f64"


@dataclass
class _InPlaceA:
    """Full row panels of A read where they lie (by gc_micro_rows) when `when` holds:
    row r of the block starts at rows + r * row_stride, depths step by depth_stride."""

    when: ir.Value
    rows: ir.Value
    row_stride: ir.Value
    depth_stride: ir.Value


def _tiles(k, ldc, c_ptr, micro, a_pack, b_pack, tile, c_base, ic, mc, jc, nc, kc, accumulate,
           dtype, in_place: _InPlaceA | None = None) -> None:
    """Every MR x NR tile of the C block [ic, ic+mc) x [jc, jc+nc), a row panel at a
    time: its A panel stays in L1 and its C tiles are visited along C's rows."""
    b = k.b
    width = nr(dtype)
    with k.loop(0, b.sdiv(b.add(mc, i64(MR - 1)), i64(MR)), "ir") as ir_:
        row = b.mul(ir_, i64(MR))
        rows = _smin(b, i64(MR), b.sub(mc, row))
        ap = k.gep(a_pack, dtype, b.mul(row, kc))
        with k.loop(0, b.sdiv(b.add(nc, i64(width - 1)), i64(width)), "jr") as jr:
            col = b.mul(jr, i64(width))
            cols = _smin(b, i64(width), b.sub(nc, col))
            bp = k.gep(b_pack, dtype, b.mul(col, kc))
            at = b.add(c_base, b.add(b.mul(b.add(ic, row), ldc), b.add(jc, col)))
            full = b.and_(b.icmp_signed("==", rows, i64(MR)),
                          b.icmp_signed("==", cols, i64(width)))

            def product(c, ldc, accumulate):
                if in_place is None:
                    b.call(micro, [ap, bp, c, ldc, kc, accumulate])
                    return
                direct = b.and_(in_place.when, b.icmp_signed("==", rows, i64(MR)))
                with b.if_else(direct) as (where_it_lies, packed):
                    with where_it_lies:
                        a = k.gep(in_place.rows, dtype, b.mul(row, in_place.row_stride))
                        b.call(_micro(k.mc, dtype, in_place=True),
                               [a, in_place.row_stride, in_place.depth_stride, bp, c, ldc,
                                kc, accumulate])
                    with packed:
                        b.call(micro, [ap, bp, c, ldc, kc, accumulate])

            with b.if_else(full) as (whole, partial):
                with whole:
                    product(k.gep(c_ptr, dtype, at), ldc, accumulate)
                with partial:
                    product(tile, i64(width), ir.Constant(I1, 0))
                    _add_tile(k, ldc, c_ptr, tile, at, rows, cols, accumulate, dtype)


def _add_tile(k, ldc, c_ptr, tile, at, rows, cols, accumulate, dtype) -> None:
    """C[at + r * ldc + c] (+)= tile[r, c] for the valid part of a partial tile."""
    b = k.b
    width = nr(dtype)
    with k.loop(0, rows, "tr") as r:
        with k.loop(0, cols, "tc") as c:
            v = k.load(tile, dtype, b.add(b.mul(r, i64(width)), c))
            dst = b.add(at, b.add(b.mul(r, ldc), c))
            old = k.load(c_ptr, dtype, dst)
            k.store(b.select(accumulate, b.fadd(old, v), v), c_ptr, dtype, dst)


def micro_kernel(mc, dtype: np.dtype) -> ir.Function:
    """gc_micro_<type>(a, b, c, ldc, kc, accumulate): the MR x NR tile at c (rows ldc
    elements apart) is set to (or, if accumulate, incremented by) the product of the
    packed panels a (kc x MR) and b (kc x NR); kc >= 1. One per module and dtype."""
    return _micro(mc, dtype, in_place=False)


def _micro(mc, dtype: np.dtype, in_place: bool) -> ir.Function:
    """The packed micro-kernel, or (in_place) gc_micro_rows_<type>(a, a_rs, a_cs, b, c,
    ldc, kc, accumulate), which reads A's element (i, p) at a[i * a_rs + p * a_cs] where
    it lies instead of from a packed panel."""
    t = llvm_type(dtype)
    name = f"gc_micro_rows_{t}" if in_place else f"gc_micro_{t}"
    existing = mc.module.globals.get(name)
    if existing is not None:
        return existing
    n_lanes = lanes(dtype)
    vec = ir.VectorType(t, n_lanes)
    strides = [I64, I64] if in_place else []
    fn = ir.Function(mc.module, ir.FunctionType(VOID, [PTR, *strides, PTR, PTR, I64, I64, I1]),
                     name=name)
    fn.linkage = "internal"
    if in_place:
        a, a_rs, a_cs, bp, c, ldc, kc, accumulate = fn.args
    else:
        (a, bp, c, ldc, kc, accumulate), a_rs, a_cs = fn.args, i64(1), i64(MR)
    for arg in (a, bp, c):
        arg.add_attribute("noalias")
    fma = mc.function(f"llvm.fma.v{n_lanes}{_suffix(t)}", vec, [vec] * 3)
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    # The C tile is read or written only after the k loop: fetch its lines meanwhile.
    prefetch = mc.function("llvm.prefetch.p0", VOID, [PTR, I32, I32, I32])
    for i in range(MR):
        for v in range(TILE_VECTORS):
            q = b.gep(c, [b.add(b.mul(i64(i), ldc), i64(v * n_lanes))], source_etype=t)
            b.call(prefetch, [q, ir.Constant(I32, 1), ir.Constant(I32, 3), ir.Constant(I32, 1)])
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
    a_depth = b.mul(p, a_cs)
    splat_mask = ir.Constant(ir.VectorType(I32, n_lanes), [0] * n_lanes)
    new = []
    for i in range(MR):
        at = b.add(a_depth, b.mul(i64(i), a_rs))
        scalar = b.load(b.gep(a, [at], source_etype=t), typ=t)
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
