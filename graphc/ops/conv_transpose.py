"""Transposed convolutions, PyTorch's conv_transpose2d and conv_transpose1d: the input
gradient of a convolution, applied forwards. They build `conv2d_grad_input` nodes (1-D:
over a height of 1), so their gradients (a convolution for the input, conv2d_grad_weight
for the weight) and LLVM kernels are the convolution's.

Weight layout as PyTorch's: (in channels, out channels / groups, kh, kw). The output size is
(H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1; output_padding
must be below the stride or the dilation.
"""

from __future__ import annotations

import sympy

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.conv import (
    add_bias,
    pair,
    positive_groups,
    require_float,
    require_rank4,
    require_static,
    span,
)
from graphc.ops.conv1d import as_int, require_rank3
from graphc.ops.leaf import operands
from graphc.ops.pad import pad
from graphc.ops.shape import reshape
from graphc.shapes import as_dim, shape_str

__all__ = ["conv_transpose1d", "conv_transpose2d"]


def _check_operands(op: str, x: Node, w: Node, groups: int, x_axes) -> None:
    """Dtypes, static sizes, channels and groups of x (N, C_in, ...) and w (C_in,
    C_out / groups, ...)."""
    require_float(op, x=x, w=w)
    require_static(op, "x", x, (1,))
    require_static(op, "w", w, tuple(range(w.ndim)))
    shapes = f"x {shape_str(x.shape)}, w {shape_str(w.shape)}"
    if x.shape[1] != w.shape[0]:
        raise build_error(op, f"x has {x.shape[1]} channels but w (in, out / groups, "
                          f"{x_axes}) expects {w.shape[0]}: {shapes}")
    if w.shape[0] % groups:
        raise build_error(op, f"w's input channels ({w.shape[0]}) must be divisible by "
                          f"groups {groups}: {shapes}")


def _out_size(op: str, dim, k: int, s: int, p: int, d: int, extra: int, shape):
    """(H - 1) * s - 2p + d (k - 1) + extra + 1, refused where it is known to be < 1."""
    size = (dim - 1) * s - 2 * p + span(k, d) + extra
    if isinstance(dim, int):
        if dim == 0 or size < 1:
            raise build_error(op, f"the output would have size {size} < 1 along an axis of "
                              f"size {dim} (x {shape_str(shape)}, kernel {k}, stride {s}, "
                              f"padding {p}, dilation {d}, output_padding {extra})")
        return size
    return as_dim(sympy.expand(size))


def transpose_conv(op: str, x: Node, w: Node, stride, padding, output_padding, groups,
                   dilation) -> Node:
    """The conv2d_grad_input node of a transposed convolution (4-D x and w, pairs checked
    by the caller); an output_padding of a stride or more (allowed below the dilation)
    leaves rows or columns no input reaches: x gets zeros there first."""
    for axis in range(2):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise build_error(op, f"output_padding {tuple(output_padding)} must be smaller "
                              f"than the stride {tuple(stride)} or the dilation "
                              f"{tuple(dilation)}")
    kernel = w.shape[2:]
    sizes = [_out_size(op, x.shape[2 + a], kernel[a], stride[a], padding[a], dilation[a],
                       output_padding[a], x.shape) for a in range(2)]
    # The convolution of the output has floor(output_padding / stride) rows (columns) more
    # than x: ((H - 1) s + output_padding) // s + 1. They get zeros.
    missing = [e // s for e, s in zip(output_padding, stride, strict=True)]
    if any(missing):
        x = pad(x, [0, missing[1], 0, missing[0]])
    return Node.make("conv2d_grad_input", (x, w), input_shape=tuple(sizes),
                     stride=tuple(stride), padding=tuple(padding), dilation=tuple(dilation),
                     groups=groups)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Node:
    """PyTorch's conv_transpose2d: x (N, C_in, H, W), w (C_in, C_out / groups, kh, kw),
    optional bias b (C_out,); stride, padding, output_padding and dilation ints or (h, w)
    pairs. The output is (N, C_out, (H - 1) * s - 2p + d (kh - 1) + output_padding + 1,
    ...): the input gradient of conv2d with the same arguments."""
    op = "conv_transpose2d"
    x, w = operands(x, w)
    require_rank4(op, x=x, w=w)
    groups = positive_groups(op, groups)
    _check_operands(op, x, w, groups, "kh, kw")
    out = transpose_conv(op, x, w, pair(op, "stride", stride, 1),
                         pair(op, "padding", padding, 0),
                         pair(op, "output_padding", output_padding, 0), groups,
                         pair(op, "dilation", dilation, 1))
    return add_bias(op, out, x, w, b, w.shape[1] * groups)


def conv_transpose1d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Node:
    """PyTorch's conv_transpose1d: x (N, C_in, L), w (C_in, C_out / groups, K), optional
    bias b (C_out,); the arguments are ints. The output length is
    (L - 1) * stride - 2 * padding + dilation * (K - 1) + output_padding + 1."""
    op = "conv_transpose1d"
    x, w = operands(x, w)
    require_rank3(op, x=x, w=w)
    groups = positive_groups(op, groups)
    _check_operands(op, x, w, groups, "K")
    ints = [as_int(op, name, v, low) for name, v, low in (
        ("stride", stride, 1), ("padding", padding, 0), ("output_padding", output_padding, 0),
        ("dilation", dilation, 1))]
    s, p, extra, d = ints
    if extra >= max(s, d):
        raise build_error(op, f"output_padding {extra} must be smaller than the stride {s} "
                          f"or the dilation {d}")
    if isinstance(x.shape[2], int):
        _out_size(op, x.shape[2], w.shape[2], s, p, d, extra, x.shape)
    x4 = reshape(x, (*x.shape[:2], 1, x.shape[2]))
    w4 = reshape(w, (*w.shape[:2], 1, w.shape[2]))
    out = transpose_conv(op, x4, w4, (1, s), (0, p), (0, extra), groups, (1, d))
    out = reshape(out, (out.shape[0], out.shape[1], out.shape[3]))
    return add_bias(op, out, x, w, b, w.shape[1] * groups)
