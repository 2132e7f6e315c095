"""2-D convolution (NCHW input, OIHW weight, as PyTorch) and its two gradient ops.

The gradient ops are bilinear, so each has a gradient rule of its own in terms of conv2d
and the other gradient op, which makes second derivatives through convolutions work.
The attribute helpers here (pairs of ints, output sizes, padded windows) serve pooling too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy
from numpy.lib.stride_tricks import sliding_window_view

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, register_class
from graphc.ops import conv_padding
from graphc.ops.leaf import operands
from graphc.ops.shape import reshape
from graphc.shapes import Dim, as_dim, dims_equal, shape_str

__all__ = ["conv2d"]  # the public builders (graphc/dsl.py)


# ----- attributes and shape rules shared with pooling ----------------------------------------
@dataclass(frozen=True)
class Window:
    """The typed view of a convolution's or pool's window attributes: stride and zero
    padding, (h, w) each, the kernel size where it is an attribute (pools, the weight
    gradient; a convolution's is its weight's shape), the dilation (the step between
    kernel taps) and the convolution's channel groups. Read them with `Window.of(node)`."""

    stride: tuple[int, int]
    padding: tuple[int, int]
    kernel: tuple[int, int] | None = None
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @classmethod
    def of(cls, node: Node) -> Window:
        attrs = node.attrs
        return cls(attrs["stride"], attrs["padding"], attrs.get("kernel"),
                   attrs.get("dilation", (1, 1)), attrs.get("groups", 1))

    @property
    def plain(self) -> bool:
        """No dilation and one group: what every convolution kernel takes."""
        return self.dilation == (1, 1) and self.groups == 1


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


def check_window_attrs(op: str, attrs: dict, kernel: tuple[int, int],
                       names=("stride", "padding")) -> None:
    """Refuse missing or malformed window attrs of a node built without the DSL function:
    `names` among stride, padding, dilation (pairs) and groups (an int)."""
    minimum = {"stride": 1, "padding": 0, "dilation": 1}
    for name in names:
        if name not in attrs:
            raise build_error(op, f"the {name} attribute is missing")
        if name == "groups":
            positive_groups(op, attrs[name])
        else:
            pair(op, name, attrs[name], minimum[name])
    pair(op, "kernel", kernel, 1)


CONV_ATTRS = ("stride", "padding", "dilation", "groups")  # every convolution op's


def positive_groups(op: str, value) -> int:
    """The channel groups of a convolution: a positive int."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise build_error(op, f"groups must be a positive int, got {value!r}")
    return int(value)


def span(kernel: int, dilation: int) -> int:
    """The extent of a dilated kernel: dilation * (kernel - 1) + 1."""
    return dilation * (kernel - 1) + 1


def out_size(dim: Dim, kernel: int, stride: int, padding: int, dilation: int = 1) -> Dim:
    """floor((dim + 2*padding - span) / stride) + 1, span = dilation * (kernel - 1) + 1;
    an int or a sympy expression."""
    extent = span(kernel, dilation)
    if isinstance(dim, int):
        return (dim + 2 * padding - extent) // stride + 1
    return as_dim(sympy.floor((dim + 2 * padding - extent) / sympy.Integer(stride)) + 1)


def _describe_kernel(kernel, dilation) -> str:
    text = f"kernel {kernel[0]}x{kernel[1]}"
    if tuple(dilation) != (1, 1):
        text += (f" with dilation {tuple(dilation)} (spanning {span(kernel[0], dilation[0])}x"
                 f"{span(kernel[1], dilation[1])})")
    return text


def out_hw(op: str, shape, kernel, stride, padding, dilation=(1, 1)) -> tuple[Dim, Dim]:
    """The output (H, W) of sliding a (dilated) kernel over the last two axes of an NCHW
    shape; refuses a kernel larger than the padded input where the input's size is known."""
    sizes = []
    for axis, k, s, p, d in zip((2, 3), kernel, stride, padding, dilation, strict=True):
        dim = shape[axis]
        if isinstance(dim, int) and dim == 0:
            raise build_error(op, f"the input's height and width must be nonzero, got "
                              f"{shape_str(shape)}")
        if isinstance(dim, int) and dim + 2 * p < span(k, d):
            raise build_error(op, f"{_describe_kernel(kernel, dilation)} is larger than the "
                              f"padded input: {shape_str(shape)} with padding {padding}")
        sizes.append(out_size(dim, k, s, p, d))
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


def check_input_size(op: str, shape, kernel, padding, dilation=(1, 1)) -> None:
    """Refuse (ValueError) an input whose symbolic sizes turned out empty or smaller than
    the (dilated) kernel: the check at call time of what out_hw checks at build time."""
    if shape[2] == 0 or shape[3] == 0:
        raise ValueError(f"{op}: the input's height and width must be nonzero, got shape "
                         f"{tuple(shape)}")
    if any(size + 2 * p < span(k, d) for size, k, p, d in
           zip(shape[2:], kernel, padding, dilation, strict=True)):
        raise ValueError(f"{op}: {_describe_kernel(kernel, dilation)} is larger than the "
                         f"padded input: shape {tuple(shape)} with padding {tuple(padding)}")


def windows(op: str, x: np.ndarray, kernel, stride, padding, fill: float = 0.0,
            dilation=(1, 1)) -> np.ndarray:
    """A (N, C, Ho, Wo, kh, kw) view of every (dilated) kernel window of x padded with
    `fill` (the padded copy is the only allocation). Refuses, naming `op`, inputs whose
    symbolic sizes turned out empty or smaller than the kernel."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    check_input_size(op, x.shape, kernel, padding, dilation)
    extent = (span(kh, dh), span(kw, dw))
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    return sliding_window_view(x, extent, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]


def im2col(op: str, x: np.ndarray, kernel, stride, padding, dilation=(1, 1)) -> np.ndarray:
    """The (N * Ho * Wo, C * kh * kw) matrix of every zero-padded window of x, one row per
    output position (n, i, j), columns in (c, a, b) order: convolutions become one matmul."""
    cols = windows(op, x, kernel, stride, padding, dilation=dilation)
    n, c, ho, wo, kh, kw = cols.shape
    return np.ascontiguousarray(cols.transpose(0, 2, 3, 1, 4, 5)).reshape(n * ho * wo,
                                                                          c * kh * kw)


def group_cols(op: str, x: np.ndarray, window: Window, kernel) -> np.ndarray:
    """The (G, N * Ho * Wo, C/G * kh * kw) im2col matrices of each channel group's windows."""
    cols = windows(op, x, kernel, window.stride, window.padding, dilation=window.dilation)
    n, c, ho, wo, kh, kw = cols.shape
    g = window.groups
    cols = cols.reshape(n, g, c // g, ho, wo, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    return np.ascontiguousarray(cols).reshape(g, n * ho * wo, (c // g) * kh * kw)


def group_rows(g: np.ndarray, groups: int) -> np.ndarray:
    """(N, O, Ho, Wo) as (G, N * Ho * Wo, O/G): each group's output channels, rows matching
    group_cols'."""
    n, o, ho, wo = g.shape
    rows = g.reshape(n, groups, o // groups, ho, wo).transpose(1, 0, 3, 4, 2)
    return np.ascontiguousarray(rows).reshape(groups, n * ho * wo, o // groups)


def ungroup_rows(rows: np.ndarray, shape) -> np.ndarray:
    """The inverse of group_rows: (G, N * Ho * Wo, O/G) as an (N, O, Ho, Wo) array."""
    n, o, ho, wo = shape
    groups = rows.shape[0]
    out = rows.reshape(groups, n, ho, wo, o // groups).transpose(1, 0, 4, 2, 3)
    return np.ascontiguousarray(out).reshape(n, o, ho, wo)


def scatter_windows(cols: np.ndarray, shape, stride, padding, dilation=(1, 1)) -> np.ndarray:
    """The adjoint of `windows` (fill 0): cols (N, C, Ho, Wo, kh, kw) summed into an
    array of x's shape, overlapping windows accumulating. Loops over kernel offsets only."""
    n, c, ho, wo, kh, kw = cols.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    h, w = shape[2], shape[3]
    # Big enough for every window and for the cropped input, whichever is larger.
    hp = max(h + 2 * ph, (ho - 1) * sh + span(kh, dh))
    wp = max(w + 2 * pw, (wo - 1) * sw + span(kw, dw))
    out = np.zeros((n, c, hp, wp), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            top, left = a * dh, b * dw
            out[:, :, top:top + (ho - 1) * sh + 1:sh, left:left + (wo - 1) * sw + 1:sw] += \
                cols[..., a, b]
    return out[:, :, ph:ph + h, pw:pw + w]


# ----- the ops -----------------------------------------------------------------------------------
def conv_attrs(node: Node) -> dict:
    """stride, padding, dilation and groups of a convolution node, to pass on."""
    return {name: node.attrs[name] for name in CONV_ATTRS}


def _check_groups(op: str, what: str, channels: int, g: int, shapes: str) -> None:
    if channels % g:
        raise build_error(op, f"{what} ({channels}) must be divisible by groups {g}: {shapes}")


def conv_reference(x: np.ndarray, w: np.ndarray, window: Window, op: str,
                   shape) -> np.ndarray:
    """conv2d of arrays (output `shape`) by one batched matmul over the channel groups."""
    g = window.groups
    weights = w.reshape(g, w.shape[0] // g, -1).transpose(0, 2, 1)
    return ungroup_rows(group_cols(op, x, window, w.shape[2:]) @ weights, shape)


@register_class
class Conv2d(Op):
    """attrs: stride, padding, dilation ((h, w) pairs), groups. x (N, C, H, W) *
    w (O, C/groups, kh, kw) -> (N, O, Ho, Wo), a cross-correlation as PyTorch's conv2d:
    x padded with zeros, output channel o sees input channels of its group only."""

    name = "conv2d"
    pattern = Pattern.OUT_FUSABLE
    epilogue = "fused_conv2d"
    epilogue_attrs = CONV_ATTRS

    def infer(self, inputs, attrs):
        x, w = inputs
        require_rank4(self.name, x=x, w=w)
        dtype = require_float(self.name, x=x, w=w)
        require_static(self.name, "x", x, (1,))
        require_static(self.name, "w", w, (0, 1, 2, 3))
        kernel = w.shape[2:]
        check_window_attrs(self.name, attrs, kernel, CONV_ATTRS)
        g = attrs["groups"]
        shapes = f"x {shape_str(x.shape)}, w {shape_str(w.shape)}"
        if x.shape[1] != w.shape[1] * g:
            expects = f"{w.shape[1]}" if g == 1 else f"{w.shape[1]} x groups {g} = " \
                                                      f"{w.shape[1] * g}"
            raise build_error(self.name, f"x has {x.shape[1]} channels but w expects "
                              f"{expects}: {shapes}")
        _check_groups(self.name, "w's output channels", w.shape[0], g, shapes)
        ho, wo = out_hw(self.name, x.shape, kernel, attrs["stride"], attrs["padding"],
                        attrs["dilation"])
        return dtype, (x.shape[0], w.shape[0], ho, wo)

    def numpy(self, node, args, env):
        x, w = args
        return conv_reference(x, w, Window.of(node), self.name, env.shape(node.shape))

    def grad(self, node, out_grad):
        x, w = node.inputs
        attrs = conv_attrs(node)
        return [
            Node.make("conv2d_grad_input", (out_grad, w), input_shape=x.shape[2:], **attrs),
            Node.make("conv2d_grad_weight", (x, out_grad), kernel=w.shape[2:], **attrs),
        ]


@register_class
class Conv2dGradInput(Op):
    """The gradient of conv2d with respect to x (a transposed convolution).

    attrs: input_shape (x's H, W; may be symbolic), stride, padding, dilation, groups.
    g (N, O, Ho, Wo), w (O, C/groups, kh, kw) -> (N, C, H, W)."""

    name = "conv2d_grad_input"

    def infer(self, inputs, attrs):
        g, w = inputs
        require_rank4(self.name, g=g, w=w)
        dtype = require_float(self.name, g=g, w=w)
        require_static(self.name, "w", w, (0, 1, 2, 3))
        if g.shape[1] != w.shape[0]:
            raise build_error(self.name, f"g has {g.shape[1]} channels but w has {w.shape[0]} "
                              f"outputs: g {shape_str(g.shape)}, w {shape_str(w.shape)}")
        check_window_attrs(self.name, attrs, w.shape[2:], CONV_ATTRS)
        _check_groups(self.name, "w's output channels", w.shape[0], attrs["groups"],
                      f"w {shape_str(w.shape)}")
        h, wd = attrs["input_shape"]
        shape = (g.shape[0], w.shape[1] * attrs["groups"], h, wd)
        check_hw(self.name, "g", g.shape, out_hw(self.name, shape, w.shape[2:], attrs["stride"],
                                                 attrs["padding"], attrs["dilation"]))
        return dtype, shape

    def numpy(self, node, args, env):
        g, w = args
        window = Window.of(node)
        groups = window.groups
        n, _, ho, wo = g.shape
        kh, kw = w.shape[2:]
        cg = w.shape[1]
        cols = group_rows(g, groups) @ w.reshape(groups, w.shape[0] // groups, -1)
        cols = cols.reshape(groups, n, ho, wo, cg, kh, kw).transpose(1, 0, 4, 2, 3, 5, 6)
        cols = cols.reshape(n, groups * cg, ho, wo, kh, kw)
        return np.ascontiguousarray(scatter_windows(cols, env.shape(node.shape), window.stride,
                                                    window.padding, window.dilation))

    def grad(self, node, out_grad):
        g, w = node.inputs
        attrs = conv_attrs(node)
        return [
            Node.make("conv2d", (out_grad, w), **attrs),
            Node.make("conv2d_grad_weight", (out_grad, g), kernel=w.shape[2:], **attrs),
        ]


@register_class
class Conv2dGradWeight(Op):
    """The gradient of conv2d with respect to w.

    attrs: kernel (kh, kw), stride, padding, dilation, groups. x (N, C, H, W),
    g (N, O, Ho, Wo) -> (O, C/groups, kh, kw)."""

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
        check_window_attrs(self.name, attrs, kernel, CONV_ATTRS)
        groups = attrs["groups"]
        shapes = f"x {shape_str(x.shape)}, g {shape_str(g.shape)}"
        _check_groups(self.name, "x's channels", x.shape[1], groups, shapes)
        _check_groups(self.name, "g's channels", g.shape[1], groups, shapes)
        check_hw(self.name, "g", g.shape, out_hw(self.name, x.shape, kernel, attrs["stride"],
                                                 attrs["padding"], attrs["dilation"]))
        return dtype, (g.shape[1], x.shape[1] // groups) + tuple(kernel)

    def numpy(self, node, args, env):
        x, g = args
        window = Window.of(node)
        rows = group_rows(g, window.groups).transpose(0, 2, 1)
        return (rows @ group_cols(self.name, x, window, window.kernel)).reshape(node.shape)

    def grad(self, node, out_grad):
        x, g = node.inputs
        attrs = conv_attrs(node)
        return [
            Node.make("conv2d_grad_input", (g, out_grad), input_shape=x.shape[2:], **attrs),
            Node.make("conv2d", (x, out_grad), **attrs),
        ]


# ----- the user-facing function ------------------------------------------------------------------
def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode: str = "zeros") -> Node:
    """PyTorch's conv2d: x (N, C, H, W), w (O, C/groups, kh, kw), optional bias b (O,).

    stride and dilation are ints or (h, w) pairs; padding an int, an (h, w) pair,
    ((top, bottom), (left, right)), "valid" (none) or "same" (output size = input size,
    stride 1; an odd total puts the extra row/column at the bottom/right, as PyTorch);
    padding_mode, as nn.Conv2d's: "zeros", "reflect", "replicate" or "circular". groups
    splits the channels into groups convolved apart (groups == C: depthwise). The output
    is (N, O, floor((H + 2p - dilation * (kh - 1) - 1) / s) + 1, ...). The bias is an
    ordinary broadcast add after the convolution, which the optimizer may fuse into it."""
    x, w = operands(x, w)
    op = "conv2d"
    require_rank4(op, x=x, w=w)
    stride = pair(op, "stride", stride, 1)
    dilation = pair(op, "dilation", dilation, 1)
    groups = positive_groups(op, groups)
    x, padding = conv_padding.apply(op, x, w.shape[2:], padding, padding_mode, stride,
                                    dilation)
    out = Node.make(op, (x, w), stride=stride, padding=padding, dilation=dilation,
                    groups=groups)
    return add_bias(op, out, x, w, b)


def add_bias(op: str, out: Node, x: Node, w: Node, b, channels: int | None = None) -> Node:
    """out + b broadcast over the output channels (axis 1), after checking b: one value per
    output channel (`channels`, by default w's first axis)."""
    if b is None:
        return out
    (b,) = operands(b)
    channels = w.shape[0] if channels is None else channels
    if b.shape != (channels,):
        raise build_error(op, f"bias must have shape ({channels},) for w "
                          f"{shape_str(w.shape)}, got {shape_str(b.shape)}")
    require_float(op, x=x, b=b)
    return out + reshape(b, (channels,) + (1,) * (out.ndim - 2))
