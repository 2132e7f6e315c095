"""The conv2d and fused_conv2d lowerings: the forward convolution on the path paths.py
chooses, and fused_conv2d's epilogue over each block of finished output planes."""

from __future__ import annotations

from graphc.backends.llvm.codegen.irtypes import convert, i64
from graphc.backends.llvm.codegen.kernel import dot
from graphc.backends.llvm.codegen.nest import broadcast_strides
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.conv import CONVOLUTION_IR, direct_emit, planes, winograd_emit
from graphc.backends.llvm.lower.conv.im2col import gemm_conv2d
from graphc.backends.llvm.lower.conv.loops import conv2d
from graphc.backends.llvm.lower.conv.paths import (
    forward_direct,
    forward_path,
    forward_planes,
    forward_scratch,
    forward_winograd,
)
from graphc.backends.llvm.lower.elementwise import expression_value, loaded, operand_env
from graphc.backends.llvm.lower.fused import fused_dtype
from graphc.ops.conv import Window
from graphc.ops.epilogue import ACC
from graphc.ops.scalar import input_symbols, kernel_body


def _position(b, q, width: int):
    """(row, column) of a flat index over an image of the given width."""
    return b.udiv(q, i64(width)), b.urem(q, i64(width))



def _emit_forward(k, node, x, w, out, scratch, epilogue=None) -> None:
    """out = conv2d(x, w) on the node's path; epilogue(n, o0, o1[, q0, q1]) on finished
    planes [o0, o1) of image n (flat pixels [q0, q1), else all)."""
    window = Window.of(node)
    path = forward_path(node, x.shape, w.shape)
    if path == "winograd":
        winograd_emit.emit(k, forward_winograd(node, x.shape, w.shape), x, w, out, scratch,
                           epilogue)
    elif path == "direct":
        direct_emit.emit(k, forward_direct(node, x.shape, w.shape), x, w, out, scratch,
                         epilogue)
    elif path == "planes":
        planes.forward(k, forward_planes(node, x.shape, w.shape), x, w, out, scratch, epilogue)
    elif path == "gemm":
        gemm_conv2d(k, x, w, out, window, scratch, epilogue)
    else:
        plane = None if epilogue is None else \
            (lambda n, o, out_base: epilogue(n, o, k.b.add(o, i64(1))))
        conv2d(k, x, w, out, window, plane)


@lowering("conv2d", scratch=forward_scratch, splits_own_work=True, ir_bytes=CONVOLUTION_IR)
def emit_conv2d(k, node, out, ins, scratch) -> None:
    x, w = ins
    _emit_forward(k, node, x, w, out, scratch)


@lowering("fused_conv2d", scratch=forward_scratch, splits_own_work=True, ir_bytes=CONVOLUTION_IR)
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
