"""Convolutions on the packed GEMM (graphc/backends/llvm/gemm/), packing image patches
straight from NCHW (implicit im2col: zero padding read as zeros): the forward
convolution, the input gradient as the forward convolution of g with the flipped,
transposed kernel, and the input gradient as columns summed back into place (col2im).
Channel groups are GEMM batch items (image, group); dilation steps the patches' index
maps by the kernel taps' distance."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm import gemm
from graphc.backends.llvm.codegen.irtypes import I8, i64
from graphc.backends.llvm.codegen.kernel import zero_run
from graphc.backends.llvm.lower.conv.loops import column_range, row_ok
from graphc.ops.conv import Window, span


def gemm_conv2d(k, x, w, out, window: Window, scratch, epilogue=None) -> None:
    """out[n, group] = w[group] (O/G x C/G KK) @ patches of x[n, group] (C/G KK x HoWo),
    one GEMM batched over images and groups; epilogue(n, o0, o1, q0, q1) on finished
    blocks (o: output channels of the whole layer)."""
    n_, c_, h, wd = x.shape
    o_, cg, kh, kw = w.shape
    ho, wo = out.shape[2:]
    (sh, sw), (ph, pw), (dh, dw), groups = (window.stride, window.padding, window.dilation,
                                            window.groups)
    og = o_ // groups
    dt = out.dtype
    weights = gemm.strided(w.ptr, w.dtype, [0, og * cg * kh * kw], cg * kh * kw, 1)

    rows = gemm.Affine((cg, kh, kw), ((h * wd, 0, 0), (0, dh, 0), (0, 0, dw)), (0, -ph, -pw))
    cols = gemm.Affine((ho, wo), ((0, sh, 0), (0, 0, sw)))
    patches = gemm.Patches(x.ptr, x.dtype, x.size, (c_ * h * wd, cg * h * wd), h, wd, rows,
                           cols)
    block = None
    if epilogue is not None:
        def block(index, o0, o1, q0, q1):
            first = k.b.mul(index[1], i64(og))
            epilogue(index[0], k.b.add(first, o0), k.b.add(first, o1), q0, q1)
    g = gemm.Gemm((n_, groups), og, ho * wo, cg * kh * kw, dt, weights, patches, out.ptr,
                  ho * wo, og * ho * wo, block)
    gemm.emit(k, g, scratch)


def col2im_layout(dtype, g, w, groups: int = 1) -> tuple[int, int]:
    """(byte offset of the patch columns in the scratch, total scratch bytes)."""
    n_, o_, ho, wo = g
    _, cg, kh, kw = w
    at = gemm.scratch_bytes(n_ * groups, cg * kh * kw, ho * wo, o_ // groups, dtype)
    return at, at + n_ * groups * cg * kh * kw * ho * wo * np.dtype(dtype).itemsize


def gemm_grad_input(k, g, w, out, window: Window, scratch) -> None:
    """gx[n, group] (C/G x HW) = flipped w[group] (C/G x O/G KK) @ patches of g[n, group]
    padded by span - 1 - padding (stride 1)."""
    n_, c_, h, wd = out.shape
    o_, cg, kh, kw = w.shape
    ho, wo = g.shape[2:]
    (dh, dw), groups = window.dilation, window.groups
    og = o_ // groups
    ph = span(kh, dh) - 1 - window.padding[0]
    pw = span(kw, dw) - 1 - window.padding[1]
    dt = out.dtype

    # Column (o, i, j) of the flipped kernel is w[o, c, kh - 1 - i, kw - 1 - j].
    flipped = gemm.Affine((og, kh, kw), ((cg * kh * kw,), (-kw,), (-1,)),
                          ((kh - 1) * kw + kw - 1,))
    weights = gemm.Rows(w.ptr, w.dtype, (0, og * cg * kh * kw), kh * kw, flipped)

    rows = gemm.Affine((og, kh, kw), ((ho * wo, 0, 0), (0, dh, 0), (0, 0, dw)), (0, -ph, -pw))
    cols = gemm.Affine((h, wd), ((0, 1, 0), (0, 0, 1)))
    patches = gemm.Patches(g.ptr, g.dtype, g.size, (o_ * ho * wo, og * ho * wo), ho, wo, rows,
                           cols)
    gm = gemm.Gemm((n_, groups), cg, h * wd, og * kh * kw, dt, weights, patches, out.ptr,
                   h * wd, cg * h * wd)
    gemm.emit(k, gm, scratch)


def col2im_grad_input(k, node, g, w, out, scratch) -> None:
    """cols[n, group] (C/G KK x HoWo) = w[group]^T (C/G KK x O/G) @ g[n, group] on the GEMM;
    after a barrier, each thread sums whole gx planes back from their columns in a fixed
    order."""
    n_, c_, h, wd = out.shape
    o_, cg, kh, kw = w.shape
    ho, wo = g.shape[2:]
    window = Window.of(node)
    (sh, sw), (ph, pw), (dh, dw), groups = (window.stride, window.padding, window.dilation,
                                            window.groups)
    og = o_ // groups
    b = k.b
    dt = out.dtype
    depth = cg * kh * kw
    at, _ = col2im_layout(dt, g.shape, w.shape, groups)
    cols = b.gep(scratch, [i64(at)], source_etype=I8)
    weights = gemm.strided(w.ptr, w.dtype, [0, og * depth], 1, depth)
    grads = gemm.strided(g.ptr, g.dtype, [o_ * ho * wo, og * ho * wo], ho * wo, 1)
    gemm.emit(k, gemm.Gemm((n_, groups), depth, ho * wo, og, dt, weights, grads, cols,
                           ho * wo, depth * ho * wo), scratch)
    k.mc.wait_all(b, k.nthreads)  # planes read columns other threads computed
    # Plane (n, c) = ((n, group), channel in group): its rows of columns start at plane * KK.
    start, stop = k.split(n_ * c_)
    with k.loop(start, stop, "plane") as plane:
        out_base = b.mul(plane, i64(h * wd))
        zero_run(k, out, out_base, h * wd)
        with k.loop(0, kh, "i") as i:
            for j in range(kw):
                lo, hi = column_range(j * dw, wd, wo, sw, pw)
                if lo >= hi:
                    continue
                row = b.add(b.mul(plane, i64(kh * kw)), b.add(b.mul(i, i64(kw)), i64(j)))
                with k.loop(0, ho, "y") as y:
                    iy = b.add(b.mul(y, i64(sh)), b.sub(b.mul(i, i64(dh)), i64(ph)))
                    with k.when(row_ok(b, iy, h)):
                        dst = b.add(out_base, b.add(b.mul(iy, i64(wd)), i64(j * dw - pw)))
                        src = b.mul(b.add(b.mul(row, i64(ho)), y), i64(wo))
                        with k.loop(lo, hi, "x") as xx:
                            at = b.add(dst, b.mul(xx, i64(sw)))
                            value = k.load(cols, dt, b.add(src, xx))
                            k.store(b.fadd(k.load(out.ptr, dt, at), value), out.ptr, dt, at)
