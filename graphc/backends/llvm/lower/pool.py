"""Max and average pooling (regular and adaptive) and their gradients as direct loops over
windows, each window the product of one window per axis (`Axis`: where its taps lie,
which lie inside, avg pooling's divisor share), as graphc/ops/pool_windows.py places them.
Taps outside the input read as -inf (max) or 0 (avg); windows of up to UNROLL taps are
unrolled, and their taps unchecked when no window leaves the image. Gradients scatter into
whole planes each thread owns, in output order, so sums do not depend on the thread
count. The common 2x2 stride-2 pool takes a vector path instead (pool_vector.py)."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.arith import smax, smin
from graphc.backends.llvm.codegen.expr import ExpressionEmitter
from graphc.backends.llvm.codegen.irtypes import I1, I64, const, i64, llvm_type
from graphc.backends.llvm.codegen.kernel import zero_run
from graphc.backends.llvm.lower import lowering, pool_vector
from graphc.ir.op import get_op
from graphc.ops.conv import span
from graphc.ops.pool_windows import Pooling, adaptive_bounds, adaptive_width

UNROLL = 64  # windows of up to this many taps are unrolled; larger ones loop


class Axis:
    """One axis of a pool's windows in IR: output y's window starts at start(y); tap t lies
    at start + t * step; `padded`: some tap of some window lies outside."""

    taps: int
    step: int
    padded: bool

    def start(self, b, y):
        raise NotImplementedError

    def inside(self, b, y, start, pos):
        raise NotImplementedError

    def count(self, b, y, start):
        """avg pooling's divisor share of output y's window."""
        raise NotImplementedError

    def first_inside(self, b, start):
        """The first tap of a window that lies inside."""
        raise NotImplementedError


class Regular(Axis):
    def __init__(self, size: int, out: int, k: int, s: int, p: int, d: int, include_pad: bool):
        self.size, self.k, self.s, self.p, self.d = size, k, s, p, d
        self.taps, self.step, self.include_pad = k, d, include_pad
        self.padded = p > 0 or (out - 1) * s - p + span(k, d) > size

    def start(self, b, y):
        return b.sub(b.mul(y, i64(self.s)), i64(self.p))

    def inside(self, b, y, start, pos):
        return b.and_(b.icmp_signed(">=", pos, i64(0)), b.icmp_signed("<", pos, i64(self.size)))

    def count(self, b, y, start):
        end = b.add(start, i64(self.k))
        if self.include_pad:
            return b.sub(smin(b, end, i64(self.size + self.p)), start)
        return b.sub(smin(b, end, i64(self.size)), smax(b, start, i64(0)))

    def first_inside(self, b, start):
        # start + ceil(-start / d) * d for a start above the image, else start
        ahead = b.sdiv(b.add(b.neg(start), i64(self.d - 1)), i64(self.d))
        return b.select(b.icmp_signed("<", start, i64(0)), b.add(start, b.mul(ahead,
                                                                             i64(self.d))), start)


class Adaptive(Axis):
    def __init__(self, size: int, out: int):
        self.size, self.out = size, out
        self.taps, self.step = adaptive_width(size, out), 1
        start, end = adaptive_bounds(size, out)
        self.padded = bool(((end - start) < self.taps).any())

    def start(self, b, y):
        return b.udiv(b.mul(y, i64(self.size)), i64(self.out))

    def end(self, b, y):
        return b.udiv(b.add(b.mul(b.add(y, i64(1)), i64(self.size)), i64(self.out - 1)),
                      i64(self.out))

    def inside(self, b, y, start, pos):
        return b.icmp_signed("<", pos, self.end(b, y))

    def count(self, b, y, start):
        return b.sub(self.end(b, y), start)

    def first_inside(self, b, start):
        return start


def axes(node, in_shape, out_shape) -> tuple[Axis, Axis]:
    """The node's windows along H and W, for an NCHW input and output; sizes bound at call
    time that the op refuses raise its ValueError (as from the NumPy reference)."""
    get_op(node.op).geometry.check_input(node.op, tuple(in_shape), node.attrs)
    in_hw, out_hw = in_shape[2:], out_shape[2:]
    if "output_size" in node.attrs:
        return tuple(Adaptive(in_hw[a], out_hw[a]) for a in range(2))
    p = Pooling.of(node)
    return tuple(Regular(in_hw[a], out_hw[a], p.kernel[a], p.stride[a], p.padding[a],
                         p.dilation[a], p.count_include_pad) for a in range(2))


class Window:
    """Output (y, x)'s window over a plane of x of width w: its taps in row-major order."""

    def __init__(self, k, rows: Axis, cols: Axis, y, x, w: int):
        b = k.b
        self.k, self.rows, self.cols, self.y, self.x, self.w = k, rows, cols, y, x, w
        self.top, self.left = rows.start(b, y), cols.start(b, x)

    def scan(self, visit) -> None:
        """visit(t, row, col, inside) for each tap t = a * kw + c (row, col: its position;
        inside: an i1, or None when every tap lies inside), unrolled or in loops."""
        k, b, rows, cols = self.k, self.k.b, self.rows, self.cols

        def tap(a, c):
            row = b.add(self.top, b.mul(a, i64(rows.step)) if not isinstance(a, int)
                        else i64(a * rows.step))
            col = b.add(self.left, b.mul(c, i64(cols.step)) if not isinstance(c, int)
                        else i64(c * cols.step))
            inside = None
            if rows.padded:
                inside = rows.inside(b, self.y, self.top, row)
            if cols.padded:
                ok = cols.inside(b, self.x, self.left, col)
                inside = ok if inside is None else b.and_(inside, ok)
            t = a * cols.taps + c if isinstance(a, int) else \
                b.add(b.mul(a, i64(cols.taps)), c)
            visit(t if not isinstance(t, int) else i64(t), row, col, inside)

        if rows.taps * cols.taps <= UNROLL:
            for a in range(rows.taps):
                for c in range(cols.taps):
                    tap(a, c)
            return
        with k.loop(0, rows.taps, "ta") as a, k.loop(0, cols.taps, "tc") as c:
            tap(a, c)

    def read(self, x, base, row, col, inside, fill):
        """x[base + row * w + col], or fill outside."""
        k, b = self.k, self.k.b
        at = b.add(b.mul(row, i64(self.w)), col)
        if inside is None:
            return k.load(x.ptr, x.dtype, b.add(base, at))
        value = k.load(x.ptr, x.dtype, b.add(base, b.select(inside, at, i64(0))))
        return b.select(inside, value, const(x.dtype, fill))

    def first_max(self, x, base):
        """(row, col) of the window's first maximum (padding -inf, a NaN the maximum, ties
        to the first); a window with nothing above -inf gives its first tap inside."""
        k, b = self.k, self.k.b
        best, first = k.alloca(llvm_type(x.dtype)), k.alloca(I1)
        wrow, wcol = k.alloca(I64), k.alloca(I64)
        b.store(const(x.dtype, -np.inf), best)
        b.store(ir.Constant(I1, 1), first)

        def visit(t, row, col, inside):
            value = self.read(x, base, row, col, inside, -np.inf)
            current = b.load(best)
            take = b.and_(b.fcmp_unordered(">", value, current),
                          b.fcmp_ordered("ord", current, current))
            take = b.or_(take, b.load(first))  # tap 0 is the start, as in the reference
            b.store(ir.Constant(I1, 0), first)
            b.store(b.select(take, value, current), best)
            b.store(b.select(take, row, b.load(wrow)), wrow)
            b.store(b.select(take, col, b.load(wcol)), wcol)

        self.scan(visit)
        row, col = b.load(wrow), b.load(wcol)
        if not (self.rows.padded or self.cols.padded):
            return row, col
        outside = b.not_(b.and_(self._inside_row(row), self._inside_col(col)))
        row = b.select(outside, self.rows.first_inside(b, self.top), row)
        col = b.select(outside, self.cols.first_inside(b, self.left), col)
        return row, col

    def _inside_row(self, row):
        if not self.rows.padded:
            return ir.Constant(I1, 1)
        return self.rows.inside(self.k.b, self.y, self.top, row)

    def _inside_col(self, col):
        if not self.cols.padded:
            return ir.Constant(I1, 1)
        return self.cols.inside(self.k.b, self.x, self.left, col)

    def divisor(self, override, dtype):
        b = self.k.b
        if override is not None:
            return const(dtype, override)
        count = b.mul(self.rows.count(b, self.y, self.top), self.cols.count(b, self.x,
                                                                           self.left))
        return b.sitofp(count, llvm_type(dtype))


def _planes_rows(k, n_planes: int, ho: int, wo: int, body) -> None:
    """body(plane, y, x) for every output position; threads split planes x rows."""
    b = k.b
    start, stop = k.split(n_planes * ho)
    with k.loop(start, stop, "row") as row:
        plane, y = b.udiv(row, i64(ho)), b.urem(row, i64(ho))
        with k.loop(0, wo, "x") as x:
            body(plane, y, x)


def _out_at(b, plane, y, x, ho: int, wo: int):
    return b.add(b.mul(b.add(b.mul(plane, i64(ho)), y), i64(wo)), x)


@lowering("max_pool2d", "adaptive_max_pool2d")
def emit_max_pool(k, node, out, ins, scratch) -> None:
    (x,) = ins
    emitter = ExpressionEmitter(k.b, k.mc, out.dtype, {})
    rows, cols = axes(node, x.shape, out.shape)
    if pool_vector.is_2x2(node, x.shape, out.shape):
        return pool_vector.max_pool_2x2(k, x, out, emitter)
    n_, c_, h, w = x.shape
    ho, wo = out.shape[2:]
    b, dt = k.b, out.dtype
    best = k.alloca(llvm_type(dt))

    def body(plane, y, xx):
        window = Window(k, rows, cols, y, xx, w)
        base = b.mul(plane, i64(h * w))
        b.store(const(dt, -np.inf), best)
        window.scan(lambda t, row, col, inside: b.store(emitter._extremum(
            b.load(best), window.read(x, base, row, col, inside, -np.inf), ">"), best))
        k.store(b.load(best), out.ptr, dt, _out_at(b, plane, y, xx, ho, wo))

    _planes_rows(k, n_ * c_, ho, wo, body)


@lowering("max_pool2d_gather", "adaptive_max_pool2d_gather")
def emit_max_pool_gather(k, node, out, ins, scratch) -> None:
    x, hv = ins
    rows, cols = axes(node, x.shape, out.shape)
    if pool_vector.is_2x2(node, x.shape, out.shape):
        return pool_vector.max_pool_gather_2x2(k, x, hv, out)
    n_, c_, h, w = x.shape
    ho, wo = out.shape[2:]
    b = k.b

    def body(plane, y, xx):
        base = b.mul(plane, i64(h * w))
        row, col = Window(k, rows, cols, y, xx, w).first_max(x, base)
        value = k.load(hv.ptr, hv.dtype, b.add(base, b.add(b.mul(row, i64(w)), col)))
        k.store(value, out.ptr, out.dtype, _out_at(b, plane, y, xx, ho, wo))

    _planes_rows(k, n_ * c_, ho, wo, body)


@lowering("max_pool2d_grad", "adaptive_max_pool2d_grad")
def emit_max_pool_grad(k, node, out, ins, scratch) -> None:
    """Each window's g added at its first maximum into a zeroed plane; disjoint windows
    inside the image (stride at least the kernel) write their taps directly instead
    (g at the first maximum, zeros elsewhere)."""
    x, g = ins
    rows, cols = axes(node, x.shape, g.shape)
    if pool_vector.is_2x2(node, x.shape, g.shape):
        return pool_vector.max_pool_grad_2x2(k, x, g, out)
    n_, c_, h, w = x.shape
    ho, wo = g.shape[2:]
    disjoint = all(isinstance(a, Regular) and not a.padded and a.d == 1 and a.s >= a.k
                   for a in (rows, cols))
    covered = disjoint and (ho * rows.s, wo * cols.s) == (h, w) and \
        (rows.s, cols.s) == (rows.k, cols.k)
    b, dt = k.b, out.dtype
    start, stop = k.split(n_ * c_)
    with k.loop(start, stop, "plane") as plane:
        base = b.mul(plane, i64(h * w))
        if not covered:
            zero_run(k, out, base, h * w)
        with k.loop(0, ho, "y") as y, k.loop(0, wo, "x") as xx:
            window = Window(k, rows, cols, y, xx, w)
            gv = k.load(g.ptr, g.dtype, _out_at(b, plane, y, xx, ho, wo))
            row, col = window.first_max(x, base)
            if disjoint:
                def put(t, trow, tcol, inside):
                    hit = b.and_(b.icmp_signed("==", trow, row), b.icmp_signed("==", tcol, col))
                    k.store(b.select(hit, gv, const(dt, 0)), out.ptr, dt,
                            b.add(base, b.add(b.mul(trow, i64(w)), tcol)))
                window.scan(put)
            else:
                at = b.add(base, b.add(b.mul(row, i64(w)), col))
                k.store(b.fadd(k.load(out.ptr, dt, at), gv), out.ptr, dt, at)


@lowering("avg_pool2d", "adaptive_avg_pool2d")
def emit_avg_pool(k, node, out, ins, scratch) -> None:
    (x,) = ins
    rows, cols = axes(node, x.shape, out.shape)
    if pool_vector.is_2x2(node, x.shape, out.shape):
        return pool_vector.avg_pool_2x2(k, x, out)
    n_, c_, h, w = x.shape
    ho, wo = out.shape[2:]
    override = node.attrs.get("divisor_override")
    b, dt = k.b, out.dtype
    total = k.alloca(llvm_type(dt))

    def body(plane, y, xx):
        window = Window(k, rows, cols, y, xx, w)
        base = b.mul(plane, i64(h * w))
        b.store(const(dt, 0), total)
        window.scan(lambda t, row, col, inside: b.store(b.fadd(
            b.load(total), window.read(x, base, row, col, inside, 0)), total))
        k.store(b.fdiv(b.load(total), window.divisor(override, dt)), out.ptr, dt,
                _out_at(b, plane, y, xx, ho, wo))

    _planes_rows(k, n_ * c_, ho, wo, body)


@lowering("avg_pool2d_grad", "adaptive_avg_pool2d_grad")
def emit_avg_pool_grad(k, node, out, ins, scratch) -> None:
    (g,) = ins
    rows, cols = axes(node, out.shape, g.shape)
    if pool_vector.is_2x2(node, out.shape, g.shape):
        return pool_vector.avg_pool_grad_2x2(k, g, out)
    n_, c_, h, w = out.shape
    ho, wo = g.shape[2:]
    override = node.attrs.get("divisor_override")
    b, dt = k.b, out.dtype
    start, stop = k.split(n_ * c_)
    with k.loop(start, stop, "plane") as plane:
        base = b.mul(plane, i64(h * w))
        zero_run(k, out, base, h * w)
        with k.loop(0, ho, "y") as y, k.loop(0, wo, "x") as xx:
            window = Window(k, rows, cols, y, xx, w)
            gv = k.load(g.ptr, dt, _out_at(b, plane, y, xx, ho, wo))
            share = b.fdiv(gv, window.divisor(override, dt))

            def add(t, row, col, inside):
                at = b.add(base, b.add(b.mul(row, i64(w)), col))

                def accumulate():
                    k.store(b.fadd(k.load(out.ptr, dt, at), share), out.ptr, dt, at)
                if inside is None:
                    accumulate()
                else:
                    with k.when(inside):
                        accumulate()

            window.scan(add)
