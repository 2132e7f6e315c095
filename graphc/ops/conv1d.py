"""1-D convolution, PyTorch's conv1d: x (N, C, L) * w (O, C/groups, K) -> (N, O, Lo), a
cross-correlation with zero padding on both ends, Lo = (L + 2p - d * (K - 1) - 1) // s + 1.

A native op with a kernel of its own on the LLVM backend (lower/conv1d.py). It declares
what the optimizer needs: it takes an elementwise epilogue (bias, activation) as
`fused_conv1d`, which carries its stride, padding, dilation and groups. Its gradients are
conv2d's gradient ops over a height of 1, so second derivatives work as for conv2d.
"""

from __future__ import annotations

import numpy as np

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, register_class
from graphc.ops import conv_padding
from graphc.ops.conv import (
    Window,
    add_bias,
    conv_reference,
    out_size,
    positive_groups,
    require_float,
    require_static,
    span,
)
from graphc.ops.leaf import operands
from graphc.ops.shape import reshape
from graphc.shapes import shape_str

__all__ = ["conv1d"]

CONV1D_ATTRS = ("stride", "padding", "dilation", "groups")


def as_int(op: str, name: str, value, minimum: int) -> int:
    """An int (or a 1-tuple of one, as PyTorch takes) of at least `minimum`."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise build_error(op, f"{name} must be an int of at least {minimum}, got {value!r}")
    return int(value)


def require_rank3(op: str, **values: Node) -> None:
    for label, v in values.items():
        if v.ndim != 3:
            raise build_error(op, f"{label} must be 3-D (NCL / OCK), got shape "
                              f"{shape_str(v.shape)}")


@register_class
class Conv1d(Op):
    """attrs: stride, padding, dilation, groups (ints). x (N, C, L), w (O, C/groups, K)
    -> (N, O, Lo)."""

    name = "conv1d"
    pattern = Pattern.OUT_FUSABLE
    epilogue = "fused_conv1d"
    epilogue_attrs = CONV1D_ATTRS

    def infer(self, inputs, attrs):
        x, w = inputs
        require_rank3(self.name, x=x, w=w)
        dtype = require_float(self.name, x=x, w=w)
        require_static(self.name, "x", x, (1,))
        require_static(self.name, "w", w, (0, 1, 2))
        for name in CONV1D_ATTRS:
            if name not in attrs:
                raise build_error(self.name, f"the {name} attribute is missing")
        stride = as_int(self.name, "stride", attrs["stride"], 1)
        padding = as_int(self.name, "padding", attrs["padding"], 0)
        dilation = as_int(self.name, "dilation", attrs["dilation"], 1)
        groups = positive_groups(self.name, attrs["groups"])
        shapes = f"x {shape_str(x.shape)}, w {shape_str(w.shape)}"
        if x.shape[1] != w.shape[1] * groups:
            expects = f"{w.shape[1]}" if groups == 1 else \
                f"{w.shape[1]} x groups {groups} = {w.shape[1] * groups}"
            raise build_error(self.name, f"x has {x.shape[1]} channels but w expects "
                              f"{expects}: {shapes}")
        if w.shape[0] % groups:
            raise build_error(self.name, f"w's output channels ({w.shape[0]}) must be "
                              f"divisible by groups {groups}: {shapes}")
        length, k = x.shape[2], w.shape[2]
        if isinstance(length, int) and length == 0:
            raise build_error(self.name, f"the input's length must be nonzero, got "
                              f"{shape_str(x.shape)}")
        if isinstance(length, int) and length + 2 * padding < span(k, dilation):
            dilated = "" if dilation == 1 else f" with dilation {dilation} (spanning " \
                                               f"{span(k, dilation)})"
            raise build_error(self.name, f"kernel {k}{dilated} is longer than the padded "
                              f"input: {shape_str(x.shape)} with padding {padding}")
        return dtype, (x.shape[0], w.shape[0], out_size(length, k, stride, padding, dilation))

    def numpy(self, node, args, env):
        x, w = args
        check_length(node, x.shape, w.shape[2])
        n, o, lo = env.shape(node.shape)
        out = conv_reference(x[:, :, None, :], w[:, :, None, :], window(node), self.name,
                             (n, o, 1, lo))
        return np.ascontiguousarray(out[:, :, 0, :])

    def grad(self, node, out_grad):
        x, w = node.inputs
        attrs = conv2d_attrs(node)
        g = reshape(out_grad, (*out_grad.shape[:2], 1, out_grad.shape[2]))
        x4 = reshape(x, (*x.shape[:2], 1, x.shape[2]))
        w4 = reshape(w, (*w.shape[:2], 1, w.shape[2]))
        dx = Node.make("conv2d_grad_input", (g, w4), input_shape=(1, x.shape[2]), **attrs)
        dw = Node.make("conv2d_grad_weight", (x4, g), kernel=(1, w.shape[2]), **attrs)
        return [reshape(dx, x.shape), reshape(dw, w.shape)]


def check_length(node: Node, shape, k: int) -> None:
    """Refuse (ValueError) an input whose symbolic length turned out empty or shorter than
    the (dilated) kernel."""
    a = node.attrs
    if shape[2] == 0:
        raise ValueError(f"conv1d: the input's length must be nonzero, got shape "
                         f"{tuple(shape)}")
    if shape[2] + 2 * a["padding"] < span(k, a["dilation"]):
        raise ValueError(f"conv1d: kernel {k} (dilation {a['dilation']}) is longer than the "
                         f"padded input: shape {tuple(shape)} with padding {a['padding']}")


def window(node: Node) -> Window:
    """conv1d's attributes as conv2d's over a height of 1."""
    a = node.attrs
    return Window((1, a["stride"]), (0, a["padding"]), None, (1, a["dilation"]), a["groups"])


def conv2d_attrs(node: Node) -> dict:
    w = window(node)
    return {"stride": w.stride, "padding": w.padding, "dilation": w.dilation,
            "groups": w.groups}


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode: str = "zeros") -> Node:
    """PyTorch's conv1d: x (N, C, L), w (O, C/groups, K), optional bias b of shape (O,);
    stride and dilation are ints; padding an int, a (before, after) pair, "valid" or
    "same" (stride 1; the odd pixel after); padding_mode "zeros", "reflect", "replicate"
    or "circular" (as nn.Conv1d's). The bias is a broadcast add the optimizer fuses into
    the convolution."""
    op = "conv1d"
    x, w = operands(x, w)
    require_rank3(op, x=x, w=w)
    stride = as_int(op, "stride", stride, 1)
    dilation = as_int(op, "dilation", dilation, 1)
    groups = positive_groups(op, groups)
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(v, (int, np.integer)) for v in padding):
        padding = (tuple(padding),)  # one axis: (before, after)
    x, (padding,) = conv_padding.apply(op, x, w.shape[2:], padding, padding_mode, (stride,),
                                       (dilation,))
    out = Node.make(op, (x, w), stride=stride, padding=padding, dilation=dilation,
                    groups=groups)
    return add_bias(op, out, x, w, b)
