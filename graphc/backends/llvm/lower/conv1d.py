"""conv1d and fused_conv1d (its elementwise epilogue): a direct loop kernel. Threads split
the (image, output channel) rows; each row is accumulated over channels and taps in the
output buffer, then the epilogue, if any, rewrites it in place. Every element is
computed by the same code in the same order on any thread count."""

from __future__ import annotations

from graphc.backends.llvm.codegen.arith import add
from graphc.backends.llvm.codegen.irtypes import convert, i64
from graphc.backends.llvm.codegen.kernel import dot, zero_run
from graphc.backends.llvm.codegen.nest import broadcast_strides
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.elementwise import expression_value, loaded, operand_env
from graphc.backends.llvm.lower.fused import fused_dtype
from graphc.ops.conv1d import check_length
from graphc.ops.epilogue import ACC
from graphc.ops.scalar import input_symbols, kernel_body


def _conv1d(k, node, x, w, out, epilogue=None) -> None:
    """out[n, o, l] = sum over c (o's group's channels), t of w[o, c, t] *
    x[n, c, l * stride + t * dilation - padding]."""
    n_, c_, length = x.shape
    o_, cg, taps = w.shape
    check_length(node, x.shape, taps)
    lo = out.shape[2]
    a = node.attrs
    stride, padding, dilation = a["stride"], a["padding"], a["dilation"]
    og = o_ // a["groups"]
    b, dt = k.b, out.dtype
    start, stop = k.split(n_ * o_)
    with k.loop(start, stop, "row") as row:
        n, o = b.udiv(row, i64(o_)), b.urem(row, i64(o_))
        base = b.mul(row, i64(lo))
        zero_run(k, out, base, lo)
        first_c = b.mul(b.udiv(o, i64(og)), i64(cg))  # the group's first input channel
        with k.loop(0, cg, "c") as c:
            x_row = b.mul(b.add(b.mul(n, i64(c_)), b.add(first_c, c)), i64(length))
            w_row = b.mul(b.add(b.mul(o, i64(cg)), c), i64(taps))
            for t in range(taps):
                shift = t * dilation - padding  # x position of output 0's tap t
                # the outputs whose tap lands inside x: 0 <= l * stride + shift < L
                first = max(0, -(shift // stride))  # ceil(-shift / stride)
                last = min(lo, (length - 1 - shift) // stride + 1)
                if first >= last:
                    continue
                weight = k.load(w.ptr, w.dtype, b.add(w_row, i64(t)))
                with k.loop(first, last, "l") as pos:
                    at = b.add(base, pos)
                    src = b.add(x_row, b.add(b.mul(pos, i64(stride)), i64(shift)))
                    product = b.fmul(weight, k.load(x.ptr, x.dtype, src))
                    k.store(add(b, dt, k.load(out.ptr, dt, at), product), out.ptr, dt, at)
        if epilogue is not None:
            epilogue(n, o, base)


@lowering("conv1d", splits_own_work=True)
def emit_conv1d(k, node, out, ins, scratch) -> None:
    x, w = ins
    _conv1d(k, node, x, w, out)


@lowering("fused_conv1d", splits_own_work=True)
def emit_fused_conv1d(k, node, out, ins, scratch) -> None:
    x, w, *extras = ins
    symbols = input_symbols(len(extras))
    body = kernel_body(node.attrs["expr"])
    dtype = fused_dtype(node, node.inputs)
    strides = [broadcast_strides(e.shape, out.shape) for e in loaded(extras)]
    lo = out.shape[2]
    b = k.b

    def epilogue(n, o, base):
        """The epilogue over output row (n, o), stored over the accumulated sums."""
        row_bases = [dot(b, [n, o], s[:2]) for s in strides]
        with k.loop(0, lo, "el") as pos:
            offsets = [b.add(r, b.mul(pos, i64(s[2]))) for r, s in zip(row_bases, strides)]
            env = operand_env(k, symbols, extras, offsets, dtype)
            at = b.add(base, pos)
            env[ACC] = convert(b, k.load(out.ptr, out.dtype, at), out.dtype, dtype)
            value = expression_value(k, body, dtype, env)
            k.store(convert(b, value, dtype, out.dtype), out.ptr, out.dtype, at)

    _conv1d(k, node, x, w, out, epilogue)
