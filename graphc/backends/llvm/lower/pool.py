"""Max and average pooling and their gradients as direct loops over windows (padding is
-inf for max, zeros counted in the divisor for average), window positions unrolled and
unchecked when no window leaves the image. Gradients scatter into whole planes each
thread owns, in output order, so sums do not depend on the thread count."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.expr import ExpressionEmitter
from graphc.backends.llvm.irtypes import I64, const, i64, llvm_type
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.conv import _zero


def _attrs(node):
    return node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"]


def _inside(b, iy, ix, h, w) -> ir.Value:
    ok = b.and_(b.icmp_signed(">=", iy, i64(0)), b.icmp_signed("<", iy, i64(h)))
    return b.and_(ok, b.and_(b.icmp_signed(">=", ix, i64(0)), b.icmp_signed("<", ix, i64(w))))


def _padded(kernel, stride, padding, in_shape, out_shape) -> bool:
    """Whether some window reaches outside the image (else no position needs a check)."""
    return any(p > 0 or (o - 1) * s + k > n
               for k, s, p, n, o in zip(kernel, stride, padding, in_shape, out_shape))


def _scan(k, x, base, top, left, kernel, h, w, padded: bool, fill, visit) -> None:
    """visit(t, value) for the window's positions t = row * kw + column in order, unrolled;
    positions outside the image read as `fill`."""
    b = k.b
    kh, kw = kernel
    dt = x.dtype
    for i in range(kh):
        iy = b.add(top, i64(i))
        for j in range(kw):
            ix = b.add(left, i64(j))
            at = b.add(b.mul(iy, i64(w)), ix)
            if padded:
                inside = _inside(b, iy, ix, h, w)
                value = b.select(inside, k.load(x.ptr, dt, b.add(base, b.select(inside, at,
                                                                                 i64(0)))),
                                 const(dt, fill))
            else:
                value = k.load(x.ptr, dt, b.add(base, at))
            visit(i * kw + j, value)


def _windows(k, n_planes: int, ho: int, wo: int, body) -> None:
    """body(plane, y, x) for every output position; threads split planes x rows."""
    b = k.b
    start, stop = k.split(n_planes * ho)
    with k.loop(start, stop, "row") as row:
        plane, y = b.udiv(row, i64(ho)), b.urem(row, i64(ho))
        with k.loop(0, wo, "x") as x:
            body(plane, y, x)


def _first_max_position(k, x, plane_base, top, left, kernel, h, w, padded: bool):
    """The position t = row * kw + column of a window's first maximum (padding -inf, NaN
    the maximum; position 0 when nothing is above -inf)."""
    b = k.b
    dt = x.dtype
    best = k.alloca(llvm_type(dt))
    where = k.alloca(I64)

    def visit(t, value):
        if t == 0:
            b.store(value, best)
            b.store(i64(0), where)
            return
        # Taken when above the best so far or NaN, unless the best is NaN already.
        current = b.load(best)
        take = b.and_(b.fcmp_unordered(">", value, current),
                      b.fcmp_ordered("ord", current, current))
        b.store(b.select(take, value, current), best)
        b.store(b.select(take, i64(t), b.load(where)), where)

    _scan(k, x, plane_base, top, left, kernel, h, w, padded, -np.inf, visit)
    return b.load(where)


def _first_max(k, x, plane_base, top, left, kernel, h, w, padded: bool):
    """(row, col) in x of the first maximum of a window (see _first_max_position); a
    window with nothing above -inf gives its top-left position inside x."""
    b = k.b
    kw = kernel[1]
    t = _first_max_position(k, x, plane_base, top, left, kernel, h, w, padded)
    row = b.add(top, b.udiv(t, i64(kw)))
    col = b.add(left, b.urem(t, i64(kw)))
    if not padded:
        return row, col
    outside = b.not_(_inside(b, row, col, h, w))
    zero = i64(0)
    row = b.select(outside, b.select(b.icmp_signed(">", top, zero), top, zero), row)
    col = b.select(outside, b.select(b.icmp_signed(">", left, zero), left, zero), col)
    return row, col


@lowering("max_pool2d")
def emit_max_pool2d(k, node, out, ins, scratch) -> None:
    (x,) = ins
    (kh, kw), (sh, sw), (ph, pw) = _attrs(node)
    n_, c_, h, w = x.shape
    ho, wo = out.shape[2:]
    padded = _padded((kh, kw), (sh, sw), (ph, pw), (h, w), (ho, wo))
    b = k.b
    dt = out.dtype
    emitter = ExpressionEmitter(b, k.mc, dt, {})
    best = k.alloca(llvm_type(dt))

    def body(plane, y, xx):
        top = b.sub(b.mul(y, i64(sh)), i64(ph))
        left = b.sub(b.mul(xx, i64(sw)), i64(pw))
        base = b.mul(plane, i64(h * w))
        b.store(const(dt, -np.inf), best)
        _scan(k, x, base, top, left, (kh, kw), h, w, padded, -np.inf,
              lambda t, value: b.store(emitter._extremum(b.load(best), value, ">"), best))
        at = b.add(b.mul(b.add(b.mul(plane, i64(ho)), y), i64(wo)), xx)
        k.store(b.load(best), out.ptr, dt, at)

    _windows(k, n_ * c_, ho, wo, body)


@lowering("max_pool2d_gather")
def emit_max_pool2d_gather(k, node, out, ins, scratch) -> None:
    x, hv = ins
    kernel, (sh, sw), (ph, pw) = _attrs(node)
    n_, c_, h, w = x.shape
    ho, wo = out.shape[2:]
    padded = _padded(kernel, (sh, sw), (ph, pw), (h, w), (ho, wo))
    b = k.b

    def body(plane, y, xx):
        top = b.sub(b.mul(y, i64(sh)), i64(ph))
        left = b.sub(b.mul(xx, i64(sw)), i64(pw))
        base = b.mul(plane, i64(h * w))
        row, col = _first_max(k, x, base, top, left, kernel, h, w, padded)
        value = k.load(hv.ptr, hv.dtype, b.add(base, b.add(b.mul(row, i64(w)), col)))
        at = b.add(b.mul(b.add(b.mul(plane, i64(ho)), y), i64(wo)), xx)
        k.store(value, out.ptr, out.dtype, at)

    _windows(k, n_ * c_, ho, wo, body)


@lowering("max_pool2d_grad")
def emit_max_pool2d_grad(k, node, out, ins, scratch) -> None:
    """Disjoint windows inside the image write their positions directly (g at the first
    maximum, zeros elsewhere); others add g into a zeroed plane at each window's maximum."""
    x, g = ins
    kernel, (sh, sw), (ph, pw) = _attrs(node)
    n_, c_, h, w = x.shape
    ho, wo = g.shape[2:]
    padded = _padded(kernel, (sh, sw), (ph, pw), (h, w), (ho, wo))
    disjoint = not padded and sh >= kernel[0] and sw >= kernel[1]
    covered = disjoint and (ho * sh, wo * sw) == (h, w) and (sh, sw) == tuple(kernel)
    b = k.b
    dt = out.dtype
    start, stop = k.split(n_ * c_)
    with k.loop(start, stop, "plane") as plane:
        base = b.mul(plane, i64(h * w))
        if not covered:
            _zero(k, out, base, h * w)
        with k.loop(0, ho, "y") as y:
            with k.loop(0, wo, "x") as xx:
                top = b.sub(b.mul(y, i64(sh)), i64(ph))
                left = b.sub(b.mul(xx, i64(sw)), i64(pw))
                gv = k.load(g.ptr, g.dtype, b.add(b.mul(b.add(b.mul(plane, i64(ho)), y),
                                                        i64(wo)), xx))
                if disjoint:
                    where = _first_max_position(k, x, base, top, left, kernel, h, w, False)
                    corner = b.add(base, b.add(b.mul(top, i64(w)), left))
                    for i in range(kernel[0]):
                        for j in range(kernel[1]):
                            hit = b.icmp_signed("==", where, i64(i * kernel[1] + j))
                            k.store(b.select(hit, gv, const(dt, 0)), out.ptr, dt,
                                    b.add(corner, i64(i * w + j)))
                else:
                    row, col = _first_max(k, x, base, top, left, kernel, h, w, padded)
                    at = b.add(base, b.add(b.mul(row, i64(w)), col))
                    k.store(b.fadd(k.load(out.ptr, dt, at), gv), out.ptr, dt, at)


@lowering("avg_pool2d")
def emit_avg_pool2d(k, node, out, ins, scratch) -> None:
    (x,) = ins
    (kh, kw), (sh, sw), (ph, pw) = _attrs(node)
    n_, c_, h, w = x.shape
    ho, wo = out.shape[2:]
    padded = _padded((kh, kw), (sh, sw), (ph, pw), (h, w), (ho, wo))
    b = k.b
    dt = out.dtype
    total = k.alloca(llvm_type(dt))

    def body(plane, y, xx):
        top = b.sub(b.mul(y, i64(sh)), i64(ph))
        left = b.sub(b.mul(xx, i64(sw)), i64(pw))
        base = b.mul(plane, i64(h * w))
        b.store(const(dt, 0), total)
        _scan(k, x, base, top, left, (kh, kw), h, w, padded, 0,
              lambda t, value: b.store(b.fadd(b.load(total), value), total))
        at = b.add(b.mul(b.add(b.mul(plane, i64(ho)), y), i64(wo)), xx)
        k.store(b.fdiv(b.load(total), const(dt, kh * kw)), out.ptr, dt, at)

    _windows(k, n_ * c_, ho, wo, body)


@lowering("avg_pool2d_grad")
def emit_avg_pool2d_grad(k, node, out, ins, scratch) -> None:
    (g,) = ins
    (kh, kw), (sh, sw), (ph, pw) = _attrs(node)
    n_, c_, h, w = out.shape
    ho, wo = g.shape[2:]
    b = k.b
    dt = out.dtype
    start, stop = k.split(n_ * c_)
    with k.loop(start, stop, "plane") as plane:
        base = b.mul(plane, i64(h * w))
        _zero(k, out, base, h * w)
        with k.loop(0, ho, "y") as y:
            with k.loop(0, wo, "x") as xx:
                gv = k.load(g.ptr, dt, b.add(b.mul(b.add(b.mul(plane, i64(ho)), y), i64(wo)),
                                             xx))
                share = b.fdiv(gv, const(dt, kh * kw))
                top = b.sub(b.mul(y, i64(sh)), i64(ph))
                left = b.sub(b.mul(xx, i64(sw)), i64(pw))
                with k.loop(0, kh, "i") as i:
                    with k.loop(0, kw, "j") as j:
                        iy, ix = b.add(top, i), b.add(left, j)
                        with k.when(_inside(b, iy, ix, h, w)):
                            at = b.add(base, b.add(b.mul(iy, i64(w)), ix))
                            k.store(b.fadd(k.load(out.ptr, dt, at), share), out.ptr, dt, at)
