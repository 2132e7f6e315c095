"""conv2d (with an optional epilogue: fused_conv2d) and its two gradient ops, as direct
loops: threads split whole output planes; each output element sums its terms in a fixed
(channel, kernel row, kernel column) order. Kernel columns are unrolled so the valid
output columns of each are constants and the inner loop over them vectorizes."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.irtypes import F64, const, convert, i64
from graphc.backends.llvm.kernel import dot
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.elementwise import expression_value, loaded, operand_env
from graphc.backends.llvm.lower.fused import fused_dtype
from graphc.backends.llvm.nest import broadcast_strides
from graphc.ops.epilogue import ACC
from graphc.ops.fused import input_symbols, kernel_body


def column_range(j: int, width: int, out_width: int, stride: int, pad: int) -> tuple[int, int]:
    """The output columns x whose input column x*stride - pad + j lies in [0, width)."""
    lo = max(0, -(-(pad - j) // stride))
    hi = min(out_width, (width - 1 + pad - j) // stride + 1)
    return lo, max(lo, hi)


def _row_ok(b, iy, height):
    return b.and_(b.icmp_signed(">=", iy, i64(0)), b.icmp_signed("<", iy, i64(height)))


def _add(b, dtype, x, y):
    return b.fadd(x, y) if dtype.kind == "f" else b.add(x, y)


def _zero(k, out, start, count) -> None:
    zero = const(out.dtype, 0)
    with k.loop(start, k.b.add(start, i64(count)), "z") as z:
        k.store(zero, out.ptr, out.dtype, z)


def conv2d(k, x, w, out, stride, padding, epilogue=None) -> None:
    """out[n, o] = sum over c, i, j of w[o, c, i, j] * x[n, c] shifted (zero padding)."""
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = w.shape
    ho, wo = out.shape[2:]
    (sh, sw), (ph, pw) = stride, padding
    b = k.b
    dt = out.dtype
    start, stop = k.split(n_ * o_)
    with k.loop(start, stop, "plane") as plane:
        n, o = b.udiv(plane, i64(o_)), b.urem(plane, i64(o_))
        out_base = b.mul(plane, i64(ho * wo))
        _zero(k, out, out_base, ho * wo)
        with k.loop(0, c_, "c") as c:
            x_plane = b.mul(b.add(b.mul(n, i64(c_)), c), i64(h * wd))
            w_base = b.mul(b.add(b.mul(o, i64(c_)), c), i64(kh * kw))
            with k.loop(0, kh, "i") as i:
                for j in range(kw):
                    lo, hi = column_range(j, wd, wo, sw, pw)
                    if lo >= hi:
                        continue
                    weight = k.load(w.ptr, w.dtype, b.add(w_base, b.add(b.mul(i, i64(kw)),
                                                                        i64(j))))
                    with k.loop(0, ho, "y") as y:
                        iy = b.add(b.mul(y, i64(sh)), b.sub(i, i64(ph)))
                        with k.when(_row_ok(b, iy, h)):
                            src = b.add(x_plane, b.add(b.mul(iy, i64(wd)), i64(j - pw)))
                            dst = b.add(out_base, b.mul(y, i64(wo)))
                            with k.loop(lo, hi, "x") as xx:
                                at = b.add(dst, xx)
                                value = k.load(x.ptr, x.dtype, b.add(src, b.mul(xx, i64(sw))))
                                total = _add(b, dt, k.load(out.ptr, dt, at),
                                             b.fmul(weight, value))
                                k.store(total, out.ptr, dt, at)
        if epilogue is not None:
            epilogue(n, o, out_base)


@lowering("conv2d")
def emit_conv2d(k, node, out, ins, scratch) -> None:
    conv2d(k, *ins, out, node.attrs["stride"], node.attrs["padding"])


@lowering("fused_conv2d")
def emit_fused_conv2d(k, node, out, ins, scratch) -> None:
    x, w, *extras = ins
    symbols = input_symbols(len(extras))
    body = kernel_body(node.attrs["expr"])
    dtype = fused_dtype(node, node.inputs)
    strides = [broadcast_strides(e.shape, out.shape) for e in loaded(extras)]
    ho, wo = out.shape[2:]
    b = k.b

    def epilogue(n, o, out_base):
        bases = [dot(b, [n, o], s[:2]) for s in strides]
        with k.loop(0, ho, "ey") as y:
            with k.loop(0, wo, "ex") as xx:
                offsets = [b.add(base, b.add(b.mul(y, i64(s[2])), b.mul(xx, i64(s[3]))))
                           for base, s in zip(bases, strides)]
                at = b.add(out_base, b.add(b.mul(y, i64(wo)), xx))
                env = operand_env(k, symbols, extras, offsets, dtype)
                env[ACC] = convert(b, k.load(out.ptr, out.dtype, at), out.dtype, dtype)
                value = expression_value(k, body, dtype, env)
                k.store(convert(b, value, dtype, out.dtype), out.ptr, out.dtype, at)

    conv2d(k, x, w, out, node.attrs["stride"], node.attrs["padding"], epilogue)


@lowering("conv2d_grad_input")
def emit_conv2d_grad_input(k, node, out, ins, scratch) -> None:
    """gx[n, c] = sum over o, i, j of w[o, c, i, j] * g[n, o] scattered back (each thread
    owns whole gx planes)."""
    g, w = ins
    n_, c_, h, wd = out.shape
    o_, _, kh, kw = w.shape
    ho, wo = g.shape[2:]
    (sh, sw), (ph, pw) = node.attrs["stride"], node.attrs["padding"]
    b = k.b
    dt = out.dtype
    start, stop = k.split(n_ * c_)
    with k.loop(start, stop, "plane") as plane:
        n, c = b.udiv(plane, i64(c_)), b.urem(plane, i64(c_))
        out_base = b.mul(plane, i64(h * wd))
        _zero(k, out, out_base, h * wd)
        with k.loop(0, o_, "o") as o:
            g_plane = b.mul(b.add(b.mul(n, i64(o_)), o), i64(ho * wo))
            w_base = b.mul(b.add(b.mul(o, i64(c_)), c), i64(kh * kw))
            with k.loop(0, kh, "i") as i:
                for j in range(kw):
                    lo, hi = column_range(j, wd, wo, sw, pw)
                    if lo >= hi:
                        continue
                    weight = k.load(w.ptr, w.dtype, b.add(w_base, b.add(b.mul(i, i64(kw)),
                                                                        i64(j))))
                    with k.loop(0, ho, "y") as y:
                        iy = b.add(b.mul(y, i64(sh)), b.sub(i, i64(ph)))
                        with k.when(_row_ok(b, iy, h)):
                            dst = b.add(out_base, b.add(b.mul(iy, i64(wd)), i64(j - pw)))
                            src = b.add(g_plane, b.mul(y, i64(wo)))
                            with k.loop(lo, hi, "x") as xx:
                                at = b.add(dst, b.mul(xx, i64(sw)))
                                value = k.load(g.ptr, g.dtype, b.add(src, xx))
                                total = _add(b, dt, k.load(out.ptr, dt, at),
                                             b.fmul(weight, value))
                                k.store(total, out.ptr, dt, at)


@lowering("conv2d_grad_weight")
def emit_conv2d_grad_weight(k, node, out, ins, scratch) -> None:
    """gw[o, c, i, j] = sum over n, y, x of g[n, o, y, x] * x[n, c, shifted], accumulated
    in float64 (the sums run over batch and image)."""
    x, g = ins
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = out.shape
    ho, wo = g.shape[2:]
    (sh, sw), (ph, pw) = node.attrs["stride"], node.attrs["padding"]
    b = k.b
    work = np.dtype("float64")
    slot = k.alloca(F64)
    start, stop = k.split(o_ * c_)
    with k.loop(start, stop, "pair") as pair:
        o, c = b.udiv(pair, i64(c_)), b.urem(pair, i64(c_))
        with k.loop(0, kh, "i") as i:
            for j in range(kw):
                lo, hi = column_range(j, wd, wo, sw, pw)
                b.store(const(work, 0), slot)
                with k.loop(0, n_ if lo < hi else 0, "n") as n:
                    x_plane = b.mul(b.add(b.mul(n, i64(c_)), c), i64(h * wd))
                    g_plane = b.mul(b.add(b.mul(n, i64(o_)), o), i64(ho * wo))
                    with k.loop(0, ho, "y") as y:
                        iy = b.add(b.mul(y, i64(sh)), b.sub(i, i64(ph)))
                        with k.when(_row_ok(b, iy, h)):
                            src = b.add(x_plane, b.add(b.mul(iy, i64(wd)), i64(j - pw)))
                            gsrc = b.add(g_plane, b.mul(y, i64(wo)))
                            with k.loop(lo, hi, "x") as xx:
                                xv = convert(b, k.load(x.ptr, x.dtype,
                                                       b.add(src, b.mul(xx, i64(sw)))),
                                             x.dtype, work)
                                gv = convert(b, k.load(g.ptr, g.dtype, b.add(gsrc, xx)),
                                             g.dtype, work)
                                b.store(b.fadd(b.load(slot), b.fmul(gv, xv)), slot)
                at = b.add(b.mul(pair, i64(kh * kw)), b.add(b.mul(i, i64(kw)), i64(j)))
                k.store(convert(b, b.load(slot), work, out.dtype), out.ptr, out.dtype, at)
