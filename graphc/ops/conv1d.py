"""1-D convolution, PyTorch's conv1d: x (N, C, L) * w (O, C, K) -> (N, O, Lo), a
cross-correlation with zero padding on both ends, Lo = (L + 2p - K) // s + 1.

A native op with a kernel of its own on the LLVM backend (lower/conv1d.py). It declares
what the optimizer needs: it takes an elementwise epilogue (bias, activation) as
`fused_conv1d`, which carries its stride and padding. Its gradients are conv2d's
gradient ops over a height of 1, so second derivatives work as for conv2d.
"""

from __future__ import annotations

import numpy as np

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, register_class
from graphc.ops.conv import (
    Window,
    im2col,
    out_size,
    require_float,
    require_static,
)
from graphc.ops.leaf import operands
from graphc.ops.shape import reshape
from graphc.shapes import shape_str

__all__ = ["conv1d"]


def _int(op: str, name: str, value, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise build_error(op, f"{name} must be an int of at least {minimum}, got {value!r}")
    return int(value)


@register_class
class Conv1d(Op):
    """attrs: stride, padding (ints). x (N, C, L), w (O, C, K) -> (N, O, Lo)."""

    name = "conv1d"
    pattern = Pattern.OUT_FUSABLE
    epilogue = "fused_conv1d"
    epilogue_attrs = ("stride", "padding")

    def infer(self, inputs, attrs):
        x, w = inputs
        for label, v in (("x", x), ("w", w)):
            if v.ndim != 3:
                raise build_error(self.name, f"{label} must be 3-D (NCL / OCK), got shape "
                                  f"{shape_str(v.shape)}")
        dtype = require_float(self.name, x=x, w=w)
        require_static(self.name, "x", x, (1,))
        require_static(self.name, "w", w, (0, 1, 2))
        if x.shape[1] != w.shape[1]:
            raise build_error(self.name, f"x has {x.shape[1]} channels but w expects "
                              f"{w.shape[1]}: x {shape_str(x.shape)}, w {shape_str(w.shape)}")
        stride = _int(self.name, "stride", attrs["stride"], 1)
        padding = _int(self.name, "padding", attrs["padding"], 0)
        length, k = x.shape[2], w.shape[2]
        if isinstance(length, int) and length + 2 * padding < k:
            raise build_error(self.name, f"kernel {k} is longer than the padded input: "
                              f"{shape_str(x.shape)} with padding {padding}")
        return dtype, (x.shape[0], w.shape[0], out_size(length, k, stride, padding))

    def numpy(self, node, args, env):
        x, w = args
        n, o, lo = env.shape(node.shape)
        window = _window(node)
        cols = im2col(self.name, x[:, :, None, :], (1, w.shape[2]), window.stride,
                      window.padding)
        out = cols @ w.reshape(w.shape[0], -1).T
        return np.ascontiguousarray(out.reshape(n, lo, o).transpose(0, 2, 1))

    def grad(self, node, out_grad):
        x, w = node.inputs
        window = _window(node)
        g = reshape(out_grad, (*out_grad.shape[:2], 1, out_grad.shape[2]))
        x4 = reshape(x, (*x.shape[:2], 1, x.shape[2]))
        w4 = reshape(w, (*w.shape[:2], 1, w.shape[2]))
        dx = Node.make("conv2d_grad_input", (g, w4), input_shape=(1, x.shape[2]),
                       stride=window.stride, padding=window.padding)
        dw = Node.make("conv2d_grad_weight", (x4, g), kernel=(1, w.shape[2]),
                       stride=window.stride, padding=window.padding)
        return [reshape(dx, x.shape), reshape(dw, w.shape)]


def _window(node: Node) -> Window:
    """conv1d's stride and padding as conv2d's over a height of 1."""
    return Window((1, node.attrs["stride"]), (0, node.attrs["padding"]))


def conv1d(x, w, b=None, stride: int = 1, padding: int = 0) -> Node:
    """PyTorch's conv1d: x (N, C, L), w (O, C, K), optional bias b of shape (O,); stride
    and padding are ints (padding adds zeros at both ends). The bias is a broadcast add
    the optimizer fuses into the convolution."""
    x, w = operands(x, w)
    out = Node.make("conv1d", (x, w), stride=_int("conv1d", "stride", stride, 1),
                    padding=_int("conv1d", "padding", padding, 0))
    if b is None:
        return out
    (b,) = operands(b)
    if b.shape != (w.shape[0],):
        raise build_error("conv1d", f"bias must have shape ({w.shape[0]},) for w "
                          f"{shape_str(w.shape)}, got {shape_str(b.shape)}")
    require_float("conv1d", x=x, b=b)
    return out + reshape(b, (w.shape[0], 1))

