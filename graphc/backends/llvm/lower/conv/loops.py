"""Convolutions as plain loops: the forward convolution (integer dtypes) and the input
gradient (integer dtypes; float ones whose weights are not all finite, on the direct
path). Threads split whole output planes; each output element sums its terms in a fixed
(channel, kernel row, kernel column) order, kernel columns unrolled so the inner loop
vectorizes."""

from __future__ import annotations

from graphc.backends.llvm.codegen.arith import add
from graphc.backends.llvm.codegen.irtypes import i64
from graphc.backends.llvm.codegen.kernel import zero_run
from graphc.ops.conv import Window


def column_range(j: int, width: int, out_width: int, stride: int, pad: int) -> tuple[int, int]:
    """The output columns x whose input column x*stride - pad + j lies in [0, width) (j:
    the tap's offset, its index times the dilation)."""
    lo = max(0, -(-(pad - j) // stride))
    hi = min(out_width, (width - 1 + pad - j) // stride + 1)
    return lo, max(lo, hi)


def row_ok(b, iy, height):
    return b.and_(b.icmp_signed(">=", iy, i64(0)), b.icmp_signed("<", iy, i64(height)))



def conv2d(k, x, w, out, window: Window, epilogue=None) -> None:
    """out[n, o] = sum over c (o's group's channels), i, j of w[o, c, i, j] * x[n, c]
    shifted (zero padding, taps dilation apart)."""
    n_, c_, h, wd = x.shape
    o_, cg, kh, kw = w.shape
    ho, wo = out.shape[2:]
    (sh, sw), (ph, pw), (dh, dw) = window.stride, window.padding, window.dilation
    og = o_ // window.groups
    b = k.b
    dt = out.dtype
    start, stop = k.split(n_ * o_)
    with k.loop(start, stop, "plane") as plane:
        n, o = b.udiv(plane, i64(o_)), b.urem(plane, i64(o_))
        out_base = b.mul(plane, i64(ho * wo))
        zero_run(k, out, out_base, ho * wo)
        first = b.mul(b.udiv(o, i64(og)), i64(cg))  # the group's first input channel
        with k.loop(0, cg, "c") as c:
            x_plane = b.mul(b.add(b.mul(n, i64(c_)), b.add(first, c)), i64(h * wd))
            w_base = b.mul(b.add(b.mul(o, i64(cg)), c), i64(kh * kw))
            with k.loop(0, kh, "i") as i:
                for j in range(kw):
                    lo, hi = column_range(j * dw, wd, wo, sw, pw)
                    if lo >= hi:
                        continue
                    weight = k.load(w.ptr, w.dtype, b.add(w_base, b.add(b.mul(i, i64(kw)),
                                                                        i64(j))))
                    with k.loop(0, ho, "y") as y:
                        iy = b.add(b.mul(y, i64(sh)), b.sub(b.mul(i, i64(dh)), i64(ph)))
                        with k.when(row_ok(b, iy, h)):
                            src = b.add(x_plane, b.add(b.mul(iy, i64(wd)), i64(j * dw - pw)))
                            dst = b.add(out_base, b.mul(y, i64(wo)))
                            with k.loop(lo, hi, "x") as xx:
                                at = b.add(dst, xx)
                                value = k.load(x.ptr, x.dtype, b.add(src, b.mul(xx, i64(sw))))
                                total = add(b, dt, k.load(out.ptr, dt, at),
                                            b.fmul(weight, value))
                                k.store(total, out.ptr, dt, at)
        if epilogue is not None:
            epilogue(n, o, out_base)


def loops_grad_input(k, node, g, w, out) -> None:
    """Loops (integer dtypes; float ones with non-finite weights on the direct path):
    each thread owns whole gx planes."""
    n_, c_, h, wd = out.shape
    o_, cg, kh, kw = w.shape
    ho, wo = g.shape[2:]
    window = Window.of(node)
    (sh, sw), (ph, pw), (dh, dw) = window.stride, window.padding, window.dilation
    og = o_ // window.groups
    b = k.b
    dt = out.dtype
    start, stop = k.split(n_ * c_)
    with k.loop(start, stop, "plane") as plane:
        n, c = b.udiv(plane, i64(c_)), b.urem(plane, i64(c_))
        first = b.mul(b.udiv(c, i64(cg)), i64(og))  # the group's first output channel
        cc = b.urem(c, i64(cg))
        out_base = b.mul(plane, i64(h * wd))
        zero_run(k, out, out_base, h * wd)
        with k.loop(0, og, "o") as oo:
            o = b.add(first, oo)
            g_plane = b.mul(b.add(b.mul(n, i64(o_)), o), i64(ho * wo))
            w_base = b.mul(b.add(b.mul(o, i64(cg)), cc), i64(kh * kw))
            with k.loop(0, kh, "i") as i:
                for j in range(kw):
                    lo, hi = column_range(j * dw, wd, wo, sw, pw)
                    if lo >= hi:
                        continue
                    weight = k.load(w.ptr, w.dtype, b.add(w_base, b.add(b.mul(i, i64(kw)),
                                                                        i64(j))))
                    with k.loop(0, ho, "y") as y:
                        iy = b.add(b.mul(y, i64(sh)), b.sub(b.mul(i, i64(dh)), i64(ph)))
                        with k.when(row_ok(b, iy, h)):
                            dst = b.add(out_base, b.add(b.mul(iy, i64(wd)), i64(j * dw - pw)))
                            src = b.add(g_plane, b.mul(y, i64(wo)))
                            with k.loop(lo, hi, "x") as xx:
                                at = b.add(dst, b.mul(xx, i64(sw)))
                                value = k.load(g.ptr, g.dtype, b.add(src, xx))
                                total = add(b, dt, k.load(out.ptr, dt, at),
                                            b.fmul(weight, value))
                                k.store(total, out.ptr, dt, at)
