"""conv2d (with an optional epilogue: fused_conv2d) and its input gradient.

Small stride-1 float convolutions (forward and input gradient) run the direct kernel of
conv_direct.py (`conv_direct.suits` states the rule and why). Other float convolutions
are GEMMs on the packed GEMM (graphc/backends/llvm/gemm.py), packing image patches
straight from NCHW (implicit im2col, zero padding read as zeros): forward
out[n] (O x HoWo) = w (O x CKK) @ patches(x[n]) (CKK x HoWo); the input gradient is the
forward convolution of g with the flipped, transposed kernel (stride 1, many input
channels), or else columns cols[n] (CKK x HoWo) = w^T @ g[n] summed back into place
(col2im: no patch packing, which dominates when the channels are few). The weight
gradient lives in conv_grad_weight.py.
Integer convolutions run as loops: threads split whole output planes; each output
element sums its terms in a fixed (channel, kernel row, kernel column) order, kernel
columns unrolled so the inner loop vectorizes.
"""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm import gemm
from graphc.backends.llvm.codegen.irtypes import I8, const, convert, i64
from graphc.backends.llvm.codegen.kernel import dot
from graphc.backends.llvm.codegen.nest import broadcast_strides
from graphc.backends.llvm.lower import conv_direct, conv_winograd, lowering
from graphc.backends.llvm.lower.elementwise import expression_value, loaded, operand_env
from graphc.backends.llvm.lower.fused import fused_dtype
from graphc.ops.conv import Window
from graphc.ops.epilogue import ACC
from graphc.ops.scalar import input_symbols, kernel_body

CONVOLUTION_IR = 100_000  # bytes of IR a convolution kernel emits, roughly

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


def _position(b, q, width: int):
    """(row, column) of a flat index over an image of the given width."""
    return b.udiv(q, i64(width)), b.urem(q, i64(width))


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


def forward_direct(node, x, w) -> conv_direct.Direct:
    """The forward convolution as the direct kernel sees it (x, w: shapes)."""
    n_, c_, h, wd = x
    o_, _, kh, kw = w
    ph, pw = Window.of(node).padding
    return conv_direct.Direct(n_, c_, h, wd, o_, kh, kw, ph, pw, c_ * kh * kw, kh * kw,
                              False, np.dtype(node.dtype))


def forward_winograd(node, x, w) -> conv_winograd.Winograd | None:
    """The forward convolution as the Winograd kernel sees it, if it is a stride-1 3 x 3
    one (x, w: shapes)."""
    n_, c_, h, wd = x
    o_, _, kh, kw = w
    if Window.of(node).stride != (1, 1) or (kh, kw) != (3, 3):
        return None
    ph, pw = Window.of(node).padding
    return conv_winograd.plan(n_, c_, h, wd, o_, ph, pw, False, np.dtype(node.dtype))


def forward_path(node, x, w) -> str:
    """"winograd" (conv_winograd.py), "direct" (conv_direct.py), "gemm" (the packed GEMM
    over image patches) or "loops" (integer dtypes) for a conv2d or fused_conv2d node with
    input shapes x and w."""
    if not gemm.supported(node.dtype):
        return "loops"
    if conv_winograd.suits(forward_winograd(node, x, w)):
        return "winograd"
    if Window.of(node).stride == (1, 1) and conv_direct.suits(forward_direct(node, x, w)):
        return "direct"
    return "gemm"


def _conv_scratch(node, shapes) -> int:
    x, w, out = shapes[0], shapes[1], shapes[-1]
    path = forward_path(node, x, w)
    if path == "winograd":
        return forward_winograd(node, x, w).scratch_bytes
    if path == "direct":
        return forward_direct(node, x, w).scratch_bytes
    if path == "gemm":
        return gemm.scratch_bytes(x[0], w[0], out[2] * out[3], w[1] * w[2] * w[3],
                                  node.dtype)
    return 0


def _emit_forward(k, node, x, w, out, scratch, epilogue=None) -> None:
    """out = conv2d(x, w) on the node's path; epilogue(n, o0, o1[, q0, q1]) on finished
    planes [o0, o1) of image n (flat pixels [q0, q1), else all)."""
    window = Window.of(node)
    stride, padding = window.stride, window.padding
    path = forward_path(node, x.shape, w.shape)
    if path == "winograd":
        conv_winograd.emit(k, forward_winograd(node, x.shape, w.shape), x, w, out, scratch,
                           epilogue)
    elif path == "direct":
        conv_direct.emit(k, forward_direct(node, x.shape, w.shape), x, w, out, scratch,
                         epilogue)
    elif path == "gemm":
        block = None if epilogue is None else \
            (lambda index, o0, o1, q0, q1: epilogue(index[0], o0, o1, q0, q1))
        gemm_conv2d(k, x, w, out, stride, padding, scratch, block)
    else:
        plane = None if epilogue is None else \
            (lambda n, o, out_base: epilogue(n, o, k.b.add(o, i64(1))))
        conv2d(k, x, w, out, stride, padding, plane)


@lowering("conv2d", scratch=_conv_scratch, splits_own_work=True, ir_bytes=CONVOLUTION_IR)
def emit_conv2d(k, node, out, ins, scratch) -> None:
    x, w = ins
    _emit_forward(k, node, x, w, out, scratch)


@lowering("fused_conv2d", scratch=_conv_scratch, splits_own_work=True, ir_bytes=CONVOLUTION_IR)
def emit_fused_conv2d(k, node, out, ins, scratch) -> None:
    x, w, *extras = ins
    symbols = input_symbols(len(extras))
    body = kernel_body(node.attrs["expr"])
    dtype = fused_dtype(node, node.inputs)
    strides = [broadcast_strides(e.shape, out.shape) for e in loaded(extras)]
    o_, ho, wo = out.shape[1:]
    b = k.b

    def store(at, offsets):
        env = operand_env(k, symbols, extras, offsets, dtype)
        env[ACC] = convert(b, k.load(out.ptr, out.dtype, at), out.dtype, dtype)
        value = expression_value(k, body, dtype, env)
        k.store(convert(b, value, dtype, out.dtype), out.ptr, out.dtype, at)

    def epilogue(n, o0, o1, q0=None, q1=None):
        """The epilogue over planes [o0, o1) of image n, flat pixels [q0, q1) (all)."""
        with k.loop(o0, o1, "eo") as o:
            bases = [dot(b, [n, o], s[:2]) for s in strides]
            plane = b.mul(b.add(b.mul(n, i64(o_)), o), i64(ho * wo))
            with k.loop(0 if q0 is None else q0, ho * wo if q1 is None else q1, "eq") as q:
                offsets = []
                for base, s in zip(bases, strides):
                    if s[2] == s[3] * wo:  # rows and columns are one flat axis
                        offsets.append(b.add(base, b.mul(q, i64(s[3]))))
                    else:
                        y, xx = _position(b, q, wo)
                        offsets.append(b.add(base, b.add(b.mul(y, i64(s[2])),
                                                         b.mul(xx, i64(s[3])))))
                store(b.add(plane, q), offsets)

    _emit_forward(k, node, x, w, out, scratch, epilogue)


FEW_CHANNELS = 16  # input gradients with fewer input channels go through col2im


def grad_input_direct(node, g, w) -> conv_direct.Direct:
    """The input gradient (stride 1, padding below the kernel) as the direct kernel's
    convolution: g padded by kernel - 1 - padding, the flipped kernel, channels swapped."""
    n_, o_, ho, wo = g
    _, c_, kh, kw = w
    ph, pw = Window.of(node).padding
    return conv_direct.Direct(n_, o_, ho, wo, c_, kh, kw, kh - 1 - ph, kw - 1 - pw, kh * kw,
                              c_ * kh * kw, True, np.dtype(node.dtype))


def grad_input_winograd(node, g, w) -> conv_winograd.Winograd | None:
    """The input gradient of a stride-1 3 x 3 convolution (padding below 3) as the
    Winograd kernel's convolution: g padded by 2 - padding, the flipped kernel, channels
    swapped."""
    n_, o_, ho, wo = g
    _, c_, kh, kw = w
    window = Window.of(node)
    (sh, sw), (ph, pw) = window.stride, window.padding
    if (sh, sw) != (1, 1) or (kh, kw) != (3, 3) or ph > 2 or pw > 2:
        return None
    return conv_winograd.plan(n_, o_, ho, wo, c_, 2 - ph, 2 - pw, True, np.dtype(node.dtype))


def grad_input_path(node, g, w) -> str:
    """"winograd" (conv_winograd.py); "direct" (conv_direct.py); "forward": the packed-GEMM
    forward convolution of g with the flipped kernel (stride 1, padding below the kernel
    size, enough channels to share the patch packing); "col2im": a GEMM into patch
    columns, then summed back into place; "loops" (integer dtypes). g and w are the input
    shapes."""
    if not gemm.supported(node.dtype):
        return "loops"
    window = Window.of(node)
    (sh, sw), (ph, pw) = window.stride, window.padding
    _, channels, kh, kw = w
    if conv_winograd.suits(grad_input_winograd(node, g, w)):
        return "winograd"
    if sh == sw == 1 and ph < kh and pw < kw:
        if conv_direct.suits(grad_input_direct(node, g, w)):
            return "direct"
        if channels >= FEW_CHANNELS:
            return "forward"
    return "col2im"


def _grad_input_scratch(node, shapes) -> int:
    g, w, out = shapes
    path = grad_input_path(node, g, w)
    if path == "winograd":
        return grad_input_winograd(node, g, w).scratch_bytes
    if path == "direct":
        return grad_input_direct(node, g, w).scratch_bytes
    if path == "forward":
        return gemm.scratch_bytes(out[0], out[1], out[2] * out[3], w[0] * w[2] * w[3],
                                  node.dtype)
    if path == "col2im":
        return _col2im_layout(node.dtype, g, w)[1]
    return 0


def _col2im_layout(dtype, g, w) -> tuple[int, int]:
    """(byte offset of the patch columns in the scratch, total scratch bytes)."""
    n_, o_, ho, wo = g
    _, c_, kh, kw = w
    at = gemm.scratch_bytes(n_, c_ * kh * kw, ho * wo, o_, dtype)
    return at, at + n_ * c_ * kh * kw * ho * wo * np.dtype(dtype).itemsize


@lowering("conv2d_grad_input", scratch=_grad_input_scratch, splits_own_work=True,
          ir_bytes=CONVOLUTION_IR)
def emit_conv2d_grad_input(k, node, out, ins, scratch) -> None:
    """gx[n, c] = sum over o, i, j of w[o, c, i, j] * g[n, o] scattered back."""
    g, w = ins
    if out.size == 0:  # an empty batch: nothing to write (col2im would get no scratch)
        return
    path = grad_input_path(node, g.shape, w.shape)
    if path == "winograd":
        conv_winograd.emit(k, grad_input_winograd(node, g.shape, w.shape), g, w, out, scratch)
    elif path == "direct":
        # Non-finite weights: the loops, which like the reference multiply no padding.
        conv_direct.emit(k, grad_input_direct(node, g.shape, w.shape), g, w, out, scratch,
                         nonfinite=lambda: _loops_grad_input(k, node, g, w, out))
    elif path == "forward":
        _gemm_grad_input(k, g, w, out, Window.of(node).padding, scratch)
    elif path == "col2im":
        _col2im_grad_input(k, node, g, w, out, scratch)
    else:
        _loops_grad_input(k, node, g, w, out)


def _gemm_grad_input(k, g, w, out, padding, scratch) -> None:
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


def _col2im_grad_input(k, node, g, w, out, scratch) -> None:
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
    at, _ = _col2im_layout(dt, g.shape, w.shape)
    cols = b.gep(scratch, [i64(at)], source_etype=I8)
    weights = gemm.strided(w.ptr, w.dtype, [0], 1, depth)
    grads = gemm.strided(g.ptr, g.dtype, [o_ * ho * wo], ho * wo, 1)
    gemm.emit(k, gemm.Gemm((n_,), depth, ho * wo, o_, dt, weights, grads, cols, ho * wo,
                           depth * ho * wo), scratch)
    b.call(k.mc.barrier, [k.nthreads])  # planes read columns other threads computed
    start, stop = k.split(n_ * c_)
    with k.loop(start, stop, "plane") as plane:
        out_base = b.mul(plane, i64(h * wd))
        _zero(k, out, out_base, h * wd)
        with k.loop(0, kh, "i") as i:
            for j in range(kw):
                lo, hi = column_range(j, wd, wo, sw, pw)
                if lo >= hi:
                    continue
                row = b.add(b.mul(plane, i64(kh * kw)), b.add(b.mul(i, i64(kw)), i64(j)))
                with k.loop(0, ho, "y") as y:
                    iy = b.add(b.mul(y, i64(sh)), b.sub(i, i64(ph)))
                    with k.when(_row_ok(b, iy, h)):
                        dst = b.add(out_base, b.add(b.mul(iy, i64(wd)), i64(j - pw)))
                        src = b.mul(b.add(b.mul(row, i64(ho)), y), i64(wo))
                        with k.loop(lo, hi, "x") as xx:
                            at = b.add(dst, b.mul(xx, i64(sw)))
                            value = k.load(cols, dt, b.add(src, xx))
                            k.store(b.fadd(k.load(out.ptr, dt, at), value), out.ptr, dt, at)


def _loops_grad_input(k, node, g, w, out) -> None:
    """Loops (integer dtypes; float ones with non-finite weights on the direct path):
    each thread owns whole gx planes."""
    n_, c_, h, wd = out.shape
    o_, _, kh, kw = w.shape
    ho, wo = g.shape[2:]
    window = Window.of(node)
    (sh, sw), (ph, pw) = window.stride, window.padding
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
