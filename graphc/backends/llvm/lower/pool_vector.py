"""The vector path of the common pool: 2x2 windows with stride 2 and no padding, a row of
windows at a time, whole vectors of them by masked loads and stores, with the arithmetic of
the NumPy reference in its order, so the results are identical to it."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I32, I64, i64, llvm_type
from graphc.backends.llvm.codegen.kernel import zero_run
from graphc.backends.llvm.codegen.vector import lanes, masked_load_of, masked_store_of, splat
from graphc.ops.pool_windows import Pooling


def is_2x2(node, in_shape, out_shape) -> bool:
    """Whether a regular pool's windows are 2x2, stride 2, unpadded, undilated, its output
    the floor of half its input and its divisor the window's (the vector path's case)."""
    if node.op not in ("max_pool2d", "max_pool2d_grad", "max_pool2d_gather", "avg_pool2d",
                       "avg_pool2d_grad"):
        return False
    p = Pooling.of(node)
    return ((p.kernel, p.stride, p.padding, p.dilation) == ((2, 2), (2, 2), (0, 0), (1, 1))
            and p.divisor_override is None
            and tuple(out_shape[2:]) == (in_shape[2] // 2, in_shape[3] // 2))


class _Windows2x2:
    """Masked vector access to 2x2 stride-2 windows, `lanes` at a time, in one of two
    layouts: along one output row (read from two image rows, `width` apart), or, when
    windows tile the image and a row has at most half a vector of them, `rows` whole
    output rows at once (their image rows are one contiguous run). Lanes past `count`
    are neither read nor written."""

    def __init__(self, k, dtype: np.dtype, width: int, out_width: int, tiled: bool):
        self.k, self.b, self.dtype = k, k.b, np.dtype(dtype)
        self.lanes = n = lanes(self.dtype)  # 16 float32 or 8 float64 windows at a time
        self.width = width
        self.rows = n // out_width if tiled and 2 * out_width <= n else 0
        t = llvm_type(self.dtype)
        self.vec = ir.VectorType(t, n)
        self.zero = ir.Constant(self.vec, None)
        self._lane = ir.Constant(ir.VectorType(I64, 4 * n), list(range(4 * n)))
        if self.rows:  # lane q: window q % out_width of output row q // out_width
            self.block = ir.VectorType(t, 4 * n)
            corner = [(q // out_width) * 4 * out_width + 2 * (q % out_width)
                      if q < self.rows * out_width else 0 for q in range(n)]
            offsets = (0, 1, 2 * out_width, 2 * out_width + 1)
            self._gather = [_indices([c + o for c in corner]) for o in offsets]
            # block element p from lane (p // (4 wo)) * wo + (p % (2 wo)) // 2 of the
            # vector of its position in the window (top/bottom, left/right).
            self._scatter = _indices([
                (2 * ((p % (4 * out_width)) // (2 * out_width)) + p % 2) * n
                + (p // (4 * out_width)) * out_width + (p % (2 * out_width)) // 2
                if p < 4 * self.rows * out_width else 0 for p in range(4 * n)])
        else:
            self.block = ir.VectorType(t, 2 * n)
            self._gather = [_indices(range(0, 2 * n, 2)), _indices(range(1, 2 * n, 2))]
            self._scatter = _indices([q // 2 + (q % 2) * n for q in range(2 * n)])

    def _mask(self, count: ir.Value, width: int) -> ir.Value:
        b = self.b
        lane = b.shuffle_vector(self._lane, self._lane, _indices(range(width)))
        return b.icmp_signed("<", lane, splat(b, count, ir.VectorType(I64, width)))

    def load(self, ptr, at, count, typ=None) -> ir.Value:
        """`count` elements from ptr[at] (a vector of typ, by default one per window); a
        count known to fill the vector is a plain load."""
        typ = typ or self.vec
        address = self.k.gep(ptr, self.dtype, at)
        if _fills(count, typ):
            return self.b.load(self.b.bitcast(address, typ.as_pointer()), typ=typ,
                               align=self.dtype.itemsize)
        return self.b.call(masked_load_of(self.k.mc, typ), [
            address, ir.Constant(I32, self.dtype.itemsize), self._mask(count, typ.count),
            ir.Constant(typ, None)])

    def store(self, value, ptr, at, count) -> None:
        """`count` elements of value to ptr[at]; a count known to fill the vector is a
        plain store (masked stores are microcoded on AMD: over ten cycles each on Zen 3)."""
        typ = value.type
        address = self.k.gep(ptr, self.dtype, at)
        if _fills(count, typ):
            self.b.store(value, self.b.bitcast(address, typ.as_pointer()),
                         align=self.dtype.itemsize)
            return
        self.b.call(masked_store_of(self.k.mc, typ), [
            value, address, ir.Constant(I32, self.dtype.itemsize),
            self._mask(count, typ.count)])

    def read(self, ptr, at, count) -> list[ir.Value]:
        """The `count` windows from the one whose top-left corner is ptr[at] as four
        vectors: top-left, top-right, bottom-left, bottom-right."""
        b = self.b
        if self.rows:
            block = self.load(ptr, at, _times(b, count, 4), self.block)
            return [b.shuffle_vector(block, block, g) for g in self._gather]
        out = []
        for row in (at, b.add(at, i64(self.width))):
            pair = self.load(ptr, row, _times(b, count, 2), self.block)
            out += [b.shuffle_vector(pair, pair, g) for g in self._gather]
        return out

    def write(self, values: list[ir.Value], ptr, at, count) -> None:
        """The inverse of read: four vectors into the windows from ptr[at] on."""
        b = self.b
        n = self.lanes
        if self.rows:
            halves = [b.shuffle_vector(x, y, _indices(range(2 * n)))
                      for x, y in (values[:2], values[2:])]
            whole = b.shuffle_vector(*halves, _indices(range(4 * n)))
            self.store(b.shuffle_vector(whole, whole, self._scatter), ptr, at,
                       _times(b, count, 4))
            return
        for (left, right), row in zip((values[:2], values[2:]),
                                      (at, b.add(at, i64(self.width)))):
            self.store(b.shuffle_vector(left, right, self._scatter), ptr, row,
                       _times(b, count, 2))


def _times(b, count, factor: int):
    """count * factor, folded when count is a constant (so _fills can tell)."""
    if isinstance(count, ir.Constant):
        return i64(count.constant * factor)
    return b.mul(count, i64(factor))


def _fills(count, typ: ir.VectorType) -> bool:
    """Whether `count` is a constant that fills a vector of typ."""
    return isinstance(count, ir.Constant) and count.constant >= typ.count


def _indices(values) -> ir.Constant:
    values = list(values)
    return ir.Constant(ir.VectorType(I32, len(values)), values)


def _each_2x2(k, dtype, shape, out_hw, body, zero=None) -> None:
    """body(v, window, at, count) for each vector of `count` windows: at is the first
    one's top-left corner in the (n, c, h, w) image, window its flat index in the
    (n, c, ho, wo) output. Threads split output rows, or whole planes when zero(base)
    must run first (a gradient that leaves pixels outside every window)."""
    b = k.b
    n_, c_, h, w = shape
    ho, wo = out_hw
    v = _Windows2x2(k, dtype, w, wo, (2 * ho, 2 * wo) == (h, w))

    def row(plane, y):
        corner = b.add(b.mul(plane, i64(h * w)), b.mul(y, i64(2 * w)))
        first = b.mul(b.add(b.mul(plane, i64(ho)), y), i64(wo))
        whole, rest = divmod(wo, v.lanes)  # whole vectors of windows, then a masked one
        with k.loop(0, whole, "chunk") as chunk:
            x0 = b.mul(chunk, i64(v.lanes))
            body(v, b.add(first, x0), b.add(corner, b.mul(x0, i64(2))), i64(v.lanes))
        if rest:
            x0 = i64(whole * v.lanes)
            body(v, b.add(first, x0), b.add(corner, b.mul(x0, i64(2))), i64(rest))

    if v.rows:  # whole output rows, `v.rows` at a time (each 2w contiguous pixels)
        start, stop = k.split(n_ * c_ * ho)
        whole = b.sdiv(b.sub(stop, start), i64(v.rows))
        with k.loop(0, whole, "rows") as j:  # count a constant: plain loads and stores
            first = b.add(start, b.mul(j, i64(v.rows)))
            body(v, b.mul(first, i64(wo)), b.mul(first, i64(2 * w)), i64(v.rows * wo))
        first = b.add(start, b.mul(whole, i64(v.rows)))
        with k.when(b.icmp_signed("<", first, stop)):  # the rows left, masked
            count = b.mul(b.sub(stop, first), i64(wo))
            body(v, b.mul(first, i64(wo)), b.mul(first, i64(2 * w)), count)
    elif zero is None:
        start, stop = k.split(n_ * c_ * ho)
        with k.loop(start, stop, "row") as r:
            row(b.udiv(r, i64(ho)), b.urem(r, i64(ho)))
    else:
        start, stop = k.split(n_ * c_)
        with k.loop(start, stop, "plane") as plane:
            zero(b.mul(plane, i64(h * w)))
            with k.loop(0, ho, "y") as y:
                row(plane, y)


def _first_max_2x2(b, values):
    """The index 0-3 (an i32 vector) of each window's first maximum, as in
    _first_max_position: a NaN is the maximum."""
    best = values[0]
    where = ir.Constant(ir.VectorType(I32, best.type.count), None)
    for t, value in enumerate(values[1:], start=1):
        take = b.and_(b.fcmp_unordered(">", value, best), b.fcmp_ordered("ord", best, best))
        best = b.select(take, value, best)
        where = b.select(take, ir.Constant(where.type, [t] * where.type.count), where)
    return where


def _is(b, where, t: int) -> ir.Value:
    return b.icmp_signed("==", where, ir.Constant(where.type, [t] * where.type.count))


def max_pool_2x2(k, x, out, emitter) -> None:
    def body(v, window, at, count):
        a, bb, c, d = v.read(x.ptr, at, count)
        best = emitter._extremum(emitter._extremum(emitter._extremum(a, bb, ">"), c, ">"),
                                 d, ">")
        v.store(best, out.ptr, window, count)

    _each_2x2(k, x.dtype, x.shape, out.shape[2:], body)


def max_pool_gather_2x2(k, x, hv, out) -> None:
    b = k.b

    def body(v, window, at, count):
        where = _first_max_2x2(b, v.read(x.ptr, at, count))
        h = v.read(hv.ptr, at, count)
        value = b.select(_is(b, where, 1), h[1],
                         b.select(_is(b, where, 2), h[2],
                                  b.select(_is(b, where, 3), h[3], h[0])))
        v.store(value, out.ptr, window, count)

    _each_2x2(k, x.dtype, x.shape, out.shape[2:], body)


def _covers(shape, out_hw) -> bool:
    return (2 * out_hw[0], 2 * out_hw[1]) == tuple(shape[2:])


def max_pool_grad_2x2(k, x, g, out) -> None:
    b = k.b

    def body(v, window, at, count):
        where = _first_max_2x2(b, v.read(x.ptr, at, count))
        gv = v.load(g.ptr, window, count)
        v.write([b.select(_is(b, where, t), gv, v.zero) for t in range(4)], out.ptr, at,
                count)

    ho_wo = g.shape[2:]
    _each_2x2(k, x.dtype, x.shape, ho_wo, body,
              None if _covers(x.shape, ho_wo) else lambda base: zero_run(
                  k, out, base, x.shape[2] * x.shape[3]))


def avg_pool_2x2(k, x, out) -> None:
    b = k.b

    def body(v, window, at, count):
        a, bb, c, d = v.read(x.ptr, at, count)
        total = b.fadd(b.fadd(b.fadd(a, bb), c), d)
        v.store(b.fdiv(total, ir.Constant(v.vec, [4.0] * v.lanes)), out.ptr, window, count)

    _each_2x2(k, x.dtype, x.shape, out.shape[2:], body)


def avg_pool_grad_2x2(k, g, out) -> None:
    b = k.b

    def body(v, window, at, count):
        share = b.fdiv(v.load(g.ptr, window, count), ir.Constant(v.vec, [4.0] * v.lanes))
        v.write([share] * 4, out.ptr, at, count)

    ho_wo = g.shape[2:]
    _each_2x2(k, out.dtype, out.shape, ho_wo, body,
              None if _covers(out.shape, ho_wo) else lambda base: zero_run(
                  k, out, base, out.shape[2] * out.shape[3]))
