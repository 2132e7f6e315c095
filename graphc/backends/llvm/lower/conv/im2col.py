"""Convolutions on the packed GEMM (graphc/backends/llvm/gemm/), packing image patches
straight from NCHW (implicit im2col: zero padding read as zeros): the forward
convolution, the input gradient as the forward convolution of g with the flipped,
transposed kernel, and the input gradient as columns summed back into place (col2im)."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm import gemm
from graphc.backends.llvm.codegen.irtypes import I8, i64
from graphc.backends.llvm.codegen.kernel import zero_run
from graphc.backends.llvm.lower.conv.loops import column_range, row_ok
from graphc.ops.conv import Window


def gemm_conv2d(k, x, w, out, stride, padding, scratch, epilogue=None) -> None:
    """out[n] = w (O x CKK) @ patches of x[n] (CKK x HoWo), as one batched GEMM."""
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = w.shape
    ho, wo = out.shape[2:]
    (sh, sw), (ph, pw) = stride, padding
    dt = out.dtype
    weights = gemm.strided(w.ptr, w.dtype, [0], c_ * kh * kw, 1)

    rows = gemm.Affine((c_, kh, kw), ((h * wd, 0, 0), (0, 1, 0), (0, 0, 1)), (0, -ph, -pw))
    cols = gemm.Affine((ho, wo), ((0, sh, 0), (0, 0, sw)))
    patches = gemm.Patches(x.ptr, x.dtype, x.size, (c_ * h * wd,), h, wd, rows, cols)
    g = gemm.Gemm((n_,), o_, ho * wo, c_ * kh * kw, dt, weights, patches, out.ptr, ho * wo,
                  o_ * ho * wo, epilogue)
    gemm.emit(k, g, scratch)


def col2im_layout(dtype, g, w) -> tuple[int, int]:
    """(byte offset of the patch columns in the scratch, total scratch bytes)."""
    n_, o_, ho, wo = g
    _, c_, kh, kw = w
    at = gemm.scratch_bytes(n_, c_ * kh * kw, ho * wo, o_, dtype)
    return at, at + n_ * c_ * kh * kw * ho * wo * np.dtype(dtype).itemsize


def gemm_grad_input(k, g, w, out, padding, scratch) -> None:
    """gx[n] (C x HW) = flipped w (C x OKK) @ patches of g[n] padded by kernel - 1 - pad."""
    n_, c_, h, wd = out.shape
    o_, _, kh, kw = w.shape
    ho, wo = g.shape[2:]
    ph, pw = kh - 1 - padding[0], kw - 1 - padding[1]
    dt = out.dtype

    # Column (o, i, j) of the flipped kernel is w[o, c, kh - 1 - i, kw - 1 - j].
    flipped = gemm.Affine((o_, kh, kw), ((c_ * kh * kw,), (-kw,), (-1,)),
                          ((kh - 1) * kw + kw - 1,))
    weights = gemm.Rows(w.ptr, w.dtype, (0,), kh * kw, flipped)

    rows = gemm.Affine((o_, kh, kw), ((ho * wo, 0, 0), (0, 1, 0), (0, 0, 1)), (0, -ph, -pw))
    cols = gemm.Affine((h, wd), ((0, 1, 0), (0, 0, 1)))
    patches = gemm.Patches(g.ptr, g.dtype, g.size, (o_ * ho * wo,), ho, wo, rows, cols)
    gm = gemm.Gemm((n_,), c_, h * wd, o_ * kh * kw, dt, weights, patches, out.ptr, h * wd,
                   c_ * h * wd)
    gemm.emit(k, gm, scratch)


def col2im_grad_input(k, node, g, w, out, scratch) -> None:
    """cols[n] (CKK x HoWo) = w^T (CKK x O) @ g[n] (O x HoWo) on the GEMM; after a barrier,
    each thread sums whole gx planes back from their columns in a fixed order."""
    n_, c_, h, wd = out.shape
    o_, _, kh, kw = w.shape
    ho, wo = g.shape[2:]
    window = Window.of(node)
    (sh, sw), (ph, pw) = window.stride, window.padding
    b = k.b
    dt = out.dtype
    depth = c_ * kh * kw
    at, _ = col2im_layout(dt, g.shape, w.shape)
    cols = b.gep(scratch, [i64(at)], source_etype=I8)
    weights = gemm.strided(w.ptr, w.dtype, [0], 1, depth)
    grads = gemm.strided(g.ptr, g.dtype, [o_ * ho * wo], ho * wo, 1)
    gemm.emit(k, gemm.Gemm((n_,), depth, ho * wo, o_, dt, weights, grads, cols, ho * wo,
                           depth * ho * wo), scratch)
    k.mc.wait_all(b, k.nthreads)  # planes read columns other threads computed
    start, stop = k.split(n_ * c_)
    with k.loop(start, stop, "plane") as plane:
        out_base = b.mul(plane, i64(h * wd))
        zero_run(k, out, out_base, h * wd)
        with k.loop(0, kh, "i") as i:
            for j in range(kw):
                lo, hi = column_range(j, wd, wo, sw, pw)
                if lo >= hi:
                    continue
                row = b.add(b.mul(plane, i64(kh * kw)), b.add(b.mul(i, i64(kw)), i64(j)))
                with k.loop(0, ho, "y") as y:
                    iy = b.add(b.mul(y, i64(sh)), b.sub(i, i64(ph)))
                    with k.when(row_ok(b, iy, h)):
                        dst = b.add(out_base, b.add(b.mul(iy, i64(wd)), i64(j - pw)))
                        src = b.mul(b.add(b.mul(row, i64(ho)), y), i64(wo))
                        with k.loop(lo, hi, "x") as xx:
                            at = b.add(dst, b.mul(xx, i64(sw)))
                            value = k.load(cols, dt, b.add(src, xx))
                            k.store(b.fadd(k.load(out.ptr, dt, at), value), out.ptr, dt, at)
