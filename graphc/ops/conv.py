"""2-D convolution (NCHW input, OIHW weight, as PyTorch) and its two gradient ops.

The gradient ops are bilinear, so each has a gradient rule of its own in terms of conv2d
and the other gradient op, which makes second derivatives through convolutions work.
The attribute helpers here (pairs of ints, output sizes, padded windows) serve pooling too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy
from numpy.lib.stride_tricks import sliding_window_view

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, register_class
from graphc.ops.leaf import operands
from graphc.ops.shape import reshape
from graphc.shapes import Dim, as_dim, dims_equal, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "conv2d",
]


# ----- attributes and shape rules shared with pooling ----------------------------------------
@dataclass(frozen=True)
class Window:
    """The typed view of a convolution's or pool's window attributes: stride and zero
    padding, (h, w) each, and the kernel size where it is an attribute (pools, the weight
    gradient; a convolution's is its weight's shape). Read them with `Window.of(node)`."""

    stride: tuple[int, int]
    padding: tuple[int, int]
    kernel: tuple[int, int] | None = None

    @classmethod
    def of(cls, node: Node) -> Window:
        attrs = node.attrs
        return cls(attrs["stride"], attrs["padding"], attrs.get("kernel"))


def pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints as an (h, w) tuple, each at least `minimum`."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  for v in items):
        raise build_error(op, f"{name} must be an int or a pair of ints, got {value!r}")
    items = (int(items[0]), int(items[1]))
    if min(items) < minimum:
        raise build_error(op, f"{name} must be at least {minimum}, got {value!r}")
    return items


def check_window_attrs(op: str, attrs: dict, kernel: tuple[int, int]) -> None:
    """Refuse malformed stride/padding attrs of a node built without the DSL function."""
    for name, minimum in (("stride", 1), ("padding", 0)):
        pair(op, name, attrs[name], minimum)
    pair(op, "kernel", kernel, 1)


def out_size(dim: Dim, kernel: int, stride: int, padding: int) -> Dim:
    """floor((dim + 2*padding - kernel) / stride) + 1, an int or a sympy expression."""
    if isinstance(dim, int):
        return (dim + 2 * padding - kernel) // stride + 1
    return as_dim(sympy.floor((dim + 2 * padding - kernel) / sympy.Integer(stride)) + 1)


def out_hw(op: str, shape, kernel, stride, padding) -> tuple[Dim, Dim]:
    """The output (H, W) of sliding a kernel over the last two axes of an NCHW shape;
    refuses a kernel larger than the padded input where the input's size is known."""
    sizes = []
    for axis, k, s, p in zip((2, 3), kernel, stride, padding, strict=True):
        dim = shape[axis]
        if isinstance(dim, int) and dim == 0:
            raise build_error(op, f"the input's height and width must be nonzero, got "
                              f"{shape_str(shape)}")
        if isinstance(dim, int) and dim + 2 * p < k:
            raise build_error(op, f"kernel {kernel[0]}x{kernel[1]} is larger than the padded "
                              f"input: {shape_str(shape)} with padding {padding}")
        sizes.append(out_size(dim, k, s, p))
    return tuple(sizes)


def check_hw(op: str, what: str, shape, expected) -> None:
    """Refuse a gradient whose (H, W) is not the forward op's output size."""
    if not all(dims_equal(a, b) for a, b in zip(shape[2:], expected, strict=True)):
        raise build_error(op, f"{what} of shape {shape_str(shape)} does not have the output "
                          f"size {shape_str(tuple(expected))} of the forward op")


def require_float(op: str, **values: Node) -> np.dtype:
    """The common float dtype of the values; mixed float dtypes are refused (cast one)."""
    for name, v in values.items():
        if not dtypes.is_float(v.dtype):
            raise build_error(op, f"{name} must be float32 or float64, got {v.dtype.name} "
                              f"(shape {shape_str(v.shape)})", dtype=True)
    kinds = {v.dtype for v in values.values()}
    if len(kinds) > 1:
        described = ", ".join(f"{n} {v.dtype.name}" for n, v in values.items())
        raise build_error(op, f"inputs must have one dtype, got {described}; cast one of them",
                          dtype=True)
    return kinds.pop()


def require_rank4(op: str, **values: Node) -> None:
    for name, v in values.items():
        if v.ndim != 4:
            raise build_error(op, f"{name} must be 4-D (NCHW / OIHW), got shape "
                              f"{shape_str(v.shape)}")


def require_static(op: str, name: str, v: Node, axes) -> None:
    for axis in axes:
        if not isinstance(v.shape[axis], int):
            raise build_error(op, f"axis {axis} of {name} {shape_str(v.shape)} must have a "
                              f"static size, got {v.shape[axis]}")


def windows(op: str, x: np.ndarray, kernel, stride, padding, fill: float = 0.0) -> np.ndarray:
    """A (N, C, Ho, Wo, kh, kw) view of every kernel window of x padded with `fill`
    (the padded copy is the only allocation). Refuses, naming `op`, inputs whose symbolic
    sizes turned out empty or smaller than the kernel."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{op}: the input's height and width must be nonzero, got shape "
                         f"{x.shape}")
    if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
        raise ValueError(f"{op}: kernel {kh}x{kw} is larger than the padded input: shape "
                         f"{x.shape} with padding {tuple(padding)}")
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def im2col(op: str, x: np.ndarray, kernel, stride, padding) -> np.ndarray:
    """The (N * Ho * Wo, C * kh * kw) matrix of every zero-padded window of x, one row per
    output position (n, i, j), columns in (c, a, b) order: convolutions become one matmul."""
    cols = windows(op, x, kernel, stride, padding)
    n, c, ho, wo, kh, kw = cols.shape
    return np.ascontiguousarray(cols.transpose(0, 2, 3, 1, 4, 5)).reshape(n * ho * wo,
                                                                          c * kh * kw)


def _matrix(w: np.ndarray) -> np.ndarray:
    """An (O, C, kh, kw) weight as the (O, C * kh * kw) matrix matching im2col's columns."""
    return w.reshape(w.shape[0], math.prod(w.shape[1:]))


def channels_last(g: np.ndarray) -> np.ndarray:
    """(N, O, Ho, Wo) as the (N * Ho * Wo, O) matrix whose rows match im2col's."""
    n, o, ho, wo = g.shape
    return np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(n * ho * wo, o)


def scatter_windows(cols: np.ndarray, shape, stride, padding) -> np.ndarray:
    """The adjoint of `windows` (fill 0): cols (N, C, Ho, Wo, kh, kw) summed into an
    array of x's shape, overlapping windows accumulating. Loops over kernel offsets only."""
    n, c, ho, wo, kh, kw = cols.shape
    (sh, sw), (ph, pw) = stride, padding
    h, w = shape[2], shape[3]
    # Big enough for every window and for the cropped input, whichever is larger.
    hp, wp = max(h + 2 * ph, (ho - 1) * sh + kh), max(w + 2 * pw, (wo - 1) * sw + kw)
    out = np.zeros((n, c, hp, wp), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            out[:, :, a:a + (ho - 1) * sh + 1:sh, b:b + (wo - 1) * sw + 1:sw] += cols[..., a, b]
    return out[:, :, ph:ph + h, pw:pw + w]


# ----- the ops -----------------------------------------------------------------------------------
def _attrs(node: Node) -> tuple[tuple[int, int], tuple[int, int]]:
    window = Window.of(node)
    return window.stride, window.padding


@register_class
class Conv2d(Op):
    """attrs: stride, padding ((h, w) pairs). x (N, C, H, W) * w (O, C, kh, kw) ->
    (N, O, Ho, Wo), a cross-correlation as PyTorch's conv2d; x is padded with zeros."""

    name = "conv2d"
    pattern = Pattern.OUT_FUSABLE
    epilogue = "fused_conv2d"
    epilogue_attrs = ("stride", "padding")

    def infer(self, inputs, attrs):
        x, w = inputs
        require_rank4(self.name, x=x, w=w)
        dtype = require_float(self.name, x=x, w=w)
        require_static(self.name, "x", x, (1,))
        require_static(self.name, "w", w, (0, 1, 2, 3))
        if x.shape[1] != w.shape[1]:
            raise build_error(self.name, f"x has {x.shape[1]} channels but w expects "
                              f"{w.shape[1]}: x {shape_str(x.shape)}, w {shape_str(w.shape)}")
        kernel = w.shape[2:]
        check_window_attrs(self.name, attrs, kernel)
        ho, wo = out_hw(self.name, x.shape, kernel, attrs["stride"], attrs["padding"])
        return dtype, (x.shape[0], w.shape[0], ho, wo)

    def numpy(self, node, args, env):
        x, w = args
        n, o, ho, wo = env.shape(node.shape)
        out = im2col(self.name, x, w.shape[2:], *_attrs(node)) @ _matrix(w).T
        return np.ascontiguousarray(out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2))

    def grad(self, node, out_grad):
        x, w = node.inputs
        stride, padding = _attrs(node)
        return [
            Node.make("conv2d_grad_input", (out_grad, w), input_shape=x.shape[2:],
                      stride=stride, padding=padding),
            Node.make("conv2d_grad_weight", (x, out_grad), kernel=w.shape[2:], stride=stride,
                      padding=padding),
        ]


@register_class
class Conv2dGradInput(Op):
    """The gradient of conv2d with respect to x (a transposed convolution).

    attrs: input_shape (x's H, W; may be symbolic), stride, padding. g (N, O, Ho, Wo),
    w (O, C, kh, kw) -> (N, C, H, W)."""

    name = "conv2d_grad_input"

    def infer(self, inputs, attrs):
        g, w = inputs
        require_rank4(self.name, g=g, w=w)
        dtype = require_float(self.name, g=g, w=w)
        require_static(self.name, "w", w, (0, 1, 2, 3))
        if g.shape[1] != w.shape[0]:
            raise build_error(self.name, f"g has {g.shape[1]} channels but w has {w.shape[0]} "
                              f"outputs: g {shape_str(g.shape)}, w {shape_str(w.shape)}")
        check_window_attrs(self.name, attrs, w.shape[2:])
        h, wd = attrs["input_shape"]
        shape = (g.shape[0], w.shape[1], h, wd)
        check_hw(self.name, "g", g.shape,
                 out_hw(self.name, shape, w.shape[2:], attrs["stride"], attrs["padding"]))
        return dtype, shape

    def numpy(self, node, args, env):
        g, w = args
        stride, padding = _attrs(node)
        n, _, ho, wo = g.shape
        cols = (channels_last(g) @ _matrix(w)).reshape(n, ho, wo, *w.shape[1:])
        return np.ascontiguousarray(scatter_windows(cols.transpose(0, 3, 1, 2, 4, 5),
                                                    env.shape(node.shape), stride, padding))

    def grad(self, node, out_grad):
        g, w = node.inputs
        stride, padding = _attrs(node)
        return [
            Node.make("conv2d", (out_grad, w), stride=stride, padding=padding),
            Node.make("conv2d_grad_weight", (out_grad, g), kernel=w.shape[2:], stride=stride,
                      padding=padding),
        ]


@register_class
class Conv2dGradWeight(Op):
    """The gradient of conv2d with respect to w.

    attrs: kernel (kh, kw), stride, padding. x (N, C, H, W), g (N, O, Ho, Wo) ->
    (O, C, kh, kw)."""

    name = "conv2d_grad_weight"

    def infer(self, inputs, attrs):
        x, g = inputs
        require_rank4(self.name, x=x, g=g)
        dtype = require_float(self.name, x=x, g=g)
        require_static(self.name, "x", x, (1,))
        require_static(self.name, "g", g, (1,))
        if not dims_equal(x.shape[0], g.shape[0]):
            raise build_error(self.name, f"x and g differ in batch size: x {shape_str(x.shape)}"
                              f", g {shape_str(g.shape)}")
        kernel = attrs["kernel"]
        check_window_attrs(self.name, attrs, kernel)
        check_hw(self.name, "g", g.shape,
                 out_hw(self.name, x.shape, kernel, attrs["stride"], attrs["padding"]))
        return dtype, (g.shape[1], x.shape[1]) + tuple(kernel)

    def numpy(self, node, args, env):
        x, g = args
        dw = channels_last(g).T @ im2col(self.name, x, Window.of(node).kernel,
                                           *_attrs(node))
        return dw.reshape(node.shape)

    def grad(self, node, out_grad):
        x, g = node.inputs
        stride, padding = _attrs(node)
        return [
            Node.make("conv2d_grad_input", (g, out_grad), input_shape=x.shape[2:],
                      stride=stride, padding=padding),
            Node.make("conv2d", (x, out_grad), stride=stride, padding=padding),
        ]


# ----- the user-facing function ------------------------------------------------------------------
def conv2d(x, w, b=None, stride=1, padding=0) -> Node:
    """PyTorch's conv2d: x (N, C, H, W), w (O, C, kh, kw), optional bias b of shape (O,).

    stride and padding are ints or (h, w) pairs; padding adds zeros on both sides. The
    output is (N, O, floor((H + 2p - kh) / s) + 1, ...). The bias is an ordinary broadcast
    add after the convolution, which the optimizer may fuse into it."""
    x, w = operands(x, w)
    out = Node.make("conv2d", (x, w), stride=pair("conv2d", "stride", stride, 1),
                    padding=pair("conv2d", "padding", padding, 0))
    if b is None:
        return out
    (b,) = operands(b)
    if b.shape != (w.shape[0],):
        raise build_error("conv2d", f"bias must have shape ({w.shape[0]},) for w "
                          f"{shape_str(w.shape)}, got {shape_str(b.shape)}")
    require_float("conv2d", x=x, b=b)
    return out + reshape(b, (w.shape[0], 1, 1))
