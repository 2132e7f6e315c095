"""conv2d_grad_weight: gw[o, c, i, j] = sum over n, y, x of g[n, o, y, x] * x[n, c, shifted].

Float weight gradients are one GEMM, gw (O x CKK) = g (O x N*HoWo) @ patches(x)
(N*HoWo x CKK), whose depth runs over the batch and the image; integer ones are direct
loops accumulated in float64.
"""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm import gemm
from graphc.backends.llvm.irtypes import F64, const, convert, i64
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.conv import _row_ok, column_range


def _grad_weight_scratch(node, shapes) -> int:
    x, g, out = shapes
    if not gemm.supported(node.dtype):
        return 0
    return gemm.scratch_bytes(1, out[0], out[1] * out[2] * out[3], x[0] * g[2] * g[3],
                              node.dtype)


@lowering("conv2d_grad_weight", scratch=_grad_weight_scratch)
def emit_conv2d_grad_weight(k, node, out, ins, scratch) -> None:
    """gw[o, c, i, j] = sum over n, y, x of g[n, o, y, x] * x[n, c, shifted]."""
    x, g = ins
    if gemm.supported(out.dtype):
        _gemm_grad_weight(k, x, g, out, node.attrs["stride"], node.attrs["padding"], scratch)
    else:
        _direct_grad_weight(k, node, x, g, out)


def _gemm_grad_weight(k, x, g, out, stride, padding, scratch) -> None:
    """gw (O x CKK) = g (O x N*HoWo) @ patches of x (N*HoWo x CKK), one GEMM whose depth
    runs over the batch and the image."""
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = out.shape
    ho, wo = g.shape[2:]
    (sh, sw), (ph, pw) = stride, padding
    dt = out.dtype

    # Column (n, yx) of row o is g[n, o, yx].
    grads = gemm.Rows(g.ptr, g.dtype, (), ho * wo,
                      gemm.Affine((n_, ho * wo), ((o_ * ho * wo,), (1,))))

    rows = gemm.Affine((n_, ho, wo), ((c_ * h * wd, 0, 0), (0, sh, 0), (0, 0, sw)),
                       (0, -ph, -pw))
    cols = gemm.Affine((c_, kh, kw), ((h * wd, 0, 0), (0, 1, 0), (0, 0, 1)))
    patches = gemm.Patches(x.ptr, x.dtype, x.size, (), h, wd, rows, cols)
    gm = gemm.Gemm((), o_, c_ * kh * kw, n_ * ho * wo, dt, grads, patches, out.ptr,
                   c_ * kh * kw, 0)
    gemm.emit(k, gm, scratch)


def _direct_grad_weight(k, node, x, g, out) -> None:
    """Accumulated in float64 (the sums run over batch and image)."""
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
