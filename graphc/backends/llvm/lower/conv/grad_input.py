"""The conv2d_grad_input lowering: the input gradient on the path paths.py chooses."""

from __future__ import annotations

from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.conv import CONVOLUTION_IR, direct_emit, winograd_emit
from graphc.backends.llvm.lower.conv.im2col import col2im_grad_input, gemm_grad_input
from graphc.backends.llvm.lower.conv.loops import loops_grad_input
from graphc.backends.llvm.lower.conv.paths import (
    grad_input_direct,
    grad_input_path,
    grad_input_scratch,
    grad_input_winograd,
)
from graphc.ops.conv import Window


@lowering("conv2d_grad_input", scratch=grad_input_scratch, splits_own_work=True,
          ir_bytes=CONVOLUTION_IR)
def emit_conv2d_grad_input(k, node, out, ins, scratch) -> None:
    """gx[n, c] = sum over o, i, j of w[o, c, i, j] * g[n, o] scattered back."""
    g, w = ins
    if out.size == 0:  # an empty batch: nothing to write (col2im would get no scratch)
        return
    path = grad_input_path(node, g.shape, w.shape)
    if path == "winograd":
        winograd_emit.emit(k, grad_input_winograd(node, g.shape, w.shape), g, w, out, scratch)
    elif path == "direct":
        # Non-finite weights: the loops, which like the reference multiply no padding.
        direct_emit.emit(k, grad_input_direct(node, g.shape, w.shape), g, w, out, scratch,
                         nonfinite=lambda: loops_grad_input(k, node, g, w, out))
    elif path == "forward":
        gemm_grad_input(k, g, w, out, Window.of(node), scratch)
    elif path == "col2im":
        col2im_grad_input(k, node, g, w, out, scratch)
    else:
        loops_grad_input(k, node, g, w, out)
