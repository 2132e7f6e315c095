"""2-D max and average pooling over NCHW inputs (PyTorch semantics, ceil_mode False) and
their gradient ops.

Max pooling pads with -inf and sends each window's gradient to its first maximum in
row-major window order; average pooling counts the zero padding in the divisor
(count_include_pad=True).
"""

from __future__ import annotations

import numpy as np

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.ops.conv import (
    Window,
    check_hw,
    check_window_attrs,
    out_hw,
    pair,
    require_float,
    require_rank4,
    scatter_windows,
    windows,
)
from graphc.ops.leaf import operands
from graphc.shapes import dims_equal, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "max_pool2d", "avg_pool2d",
]


def _check_pool(op: str, x: Node, attrs: dict, shape=None) -> tuple:
    """The output (H, W) of pooling a value of `shape` (x's by default) with attrs."""
    kernel, padding = attrs["kernel"], attrs["padding"]
    check_window_attrs(op, attrs, kernel)
    if any(p > k // 2 for p, k in zip(padding, kernel, strict=True)):
        raise build_error(op, f"padding {padding} must be at most half the kernel {kernel}")
    return out_hw(op, x.shape if shape is None else shape, kernel, attrs["stride"], padding)


def _window_attrs(node: Node) -> tuple:
    window = Window.of(node)
    return window.kernel, window.stride, window.padding


def _offsets(kernel):
    """Every (a, b) offset in a window, row by row."""
    return [(a, b) for a in range(kernel[0]) for b in range(kernel[1])]


def reduce_windows(op: str, x: np.ndarray, kernel, stride, padding, fill: float,
                   ufunc) -> np.ndarray:
    """ufunc (np.maximum, np.add) over every window of x padded with `fill`, one vectorized
    step per kernel offset: no window copies."""
    cols = windows(op, x, kernel, stride, padding, fill)
    out = cols[..., 0, 0].copy()
    for a, b in _offsets(kernel)[1:]:
        ufunc(out, cols[..., a, b], out=out)
    return out


def argmax_index(op: str, x: np.ndarray, kernel, stride, padding) -> np.ndarray:
    """For every output position (N, C, Ho, Wo), the flat index into x of its window's first
    maximum (row-major window order, a NaN counting as the maximum; padding never chosen)."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, w = x.shape
    cols = windows(op, x, kernel, stride, padding, fill=-np.inf)
    best = cols[..., 0, 0].copy()
    arg = np.zeros(best.shape, np.intp)
    for k, (a, b) in enumerate(_offsets(kernel)[1:], start=1):
        value = cols[..., a, b]
        better = (value > best) | (np.isnan(value) & ~np.isnan(best))
        np.copyto(best, value, where=better)
        np.copyto(arg, k, where=better)
    ho, wo = best.shape[2:]
    top = (np.arange(ho) * sh - ph)[:, None]
    left = (np.arange(wo) * sw - pw)[None, :]
    row, col = top + arg // kernel[1], left + arg % kernel[1]
    # A window whose real values are all -inf ties with its padding: PyTorch takes the first
    # real position, the window's top-left one inside x.
    outside = (row < 0) | (row >= h) | (col < 0) | (col >= w)
    if outside.any():
        row = np.where(outside, np.maximum(top, 0), row)
        col = np.where(outside, np.maximum(left, 0), col)
    plane = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
    return plane + row * w + col


def _scatter_add(index: np.ndarray, values: np.ndarray, shape, dtype) -> np.ndarray:
    """Zeros of `shape` with values added at flat indices (repeats accumulate)."""
    total = int(np.prod(shape, dtype=np.int64))
    out = np.bincount(index.ravel(), weights=values.ravel(), minlength=total)
    return out.astype(dtype, copy=False).reshape(shape)


@register_class
class MaxPool2d(Op):
    """attrs: kernel, stride, padding ((h, w) pairs). (N, C, H, W) -> (N, C, Ho, Wo),
    the max of each window of x padded with -inf."""

    name = "max_pool2d"

    def infer(self, inputs, attrs):
        (x,) = inputs
        require_rank4(self.name, x=x)
        dtype = require_float(self.name, x=x)
        return dtype, x.shape[:2] + _check_pool(self.name, x, attrs)

    def numpy(self, node, args, env):
        return reduce_windows(self.name, args[0], *_window_attrs(node), -np.inf, np.maximum)

    def grad(self, node, out_grad):
        (x,) = node.inputs
        return [Node.make("max_pool2d_grad", (x, out_grad), **node.attrs)]


@register_class
class MaxPool2dGrad(Op):
    """The gradient of max_pool2d: each window's g added at the first maximum of x in it.

    attrs as max_pool2d. x (N, C, H, W), g (N, C, Ho, Wo) -> (N, C, H, W)."""

    name = "max_pool2d_grad"

    def infer(self, inputs, attrs):
        x, g = inputs
        require_rank4(self.name, x=x, g=g)
        dtype = require_float(self.name, x=x, g=g)
        _check_same_nc(self.name, x, g)
        check_hw(self.name, "g", g.shape, _check_pool(self.name, x, attrs))
        return dtype, x.shape

    def numpy(self, node, args, env):
        x, g = args
        index = argmax_index(self.name, x, *_window_attrs(node))
        return _scatter_add(index, g, x.shape, node.dtype)

    def grad(self, node, out_grad):
        x, _ = node.inputs
        # Linear in g; piecewise constant in x (the argmax moves in jumps).
        return [None, Node.make("max_pool2d_gather", (x, out_grad), **node.attrs)]


@register_class
class MaxPool2dGather(Op):
    """h (x's shape) read at the first maximum of x in each pooling window: the adjoint of
    max_pool2d_grad in g. attrs as max_pool2d. x, h (N, C, H, W) -> (N, C, Ho, Wo)."""

    name = "max_pool2d_gather"

    def infer(self, inputs, attrs):
        x, h = inputs
        require_rank4(self.name, x=x, h=h)
        dtype = require_float(self.name, x=x, h=h)
        if not all(dims_equal(a, b) for a, b in zip(x.shape, h.shape, strict=True)):
            raise build_error(self.name, f"h must have x's shape {shape_str(x.shape)}, got "
                              f"{shape_str(h.shape)}")
        return dtype, x.shape[:2] + _check_pool(self.name, x, attrs)

    def numpy(self, node, args, env):
        x, h = args
        return h.ravel()[argmax_index(self.name, x, *_window_attrs(node))]

    def grad(self, node, out_grad):
        x, _ = node.inputs
        return [None, Node.make("max_pool2d_grad", (x, out_grad), **node.attrs)]


@register_class
class AvgPool2d(Op):
    """attrs: kernel, stride, padding. (N, C, H, W) -> (N, C, Ho, Wo), the mean of each
    window of x padded with zeros, the padding counted in the divisor."""

    name = "avg_pool2d"

    def infer(self, inputs, attrs):
        (x,) = inputs
        require_rank4(self.name, x=x)
        dtype = require_float(self.name, x=x)
        return dtype, x.shape[:2] + _check_pool(self.name, x, attrs)

    def numpy(self, node, args, env):
        kernel = Window.of(node).kernel
        total = reduce_windows(self.name, args[0], *_window_attrs(node), 0.0, np.add)
        return total / node.dtype.type(kernel[0] * kernel[1])

    def grad(self, node, out_grad):
        (x,) = node.inputs
        return [Node.make("avg_pool2d_grad", (out_grad,), input_shape=x.shape[2:],
                          **node.attrs)]


@register_class
class AvgPool2dGrad(Op):
    """The gradient of avg_pool2d: each window's g / (kh * kw) spread over the window.

    attrs: input_shape (x's H, W; may be symbolic), kernel, stride, padding.
    g (N, C, Ho, Wo) -> (N, C, H, W)."""

    name = "avg_pool2d_grad"

    def infer(self, inputs, attrs):
        (g,) = inputs
        require_rank4(self.name, g=g)
        dtype = require_float(self.name, g=g)
        shape = g.shape[:2] + tuple(attrs["input_shape"])
        check_hw(self.name, "g", g.shape, _check_pool(self.name, g, attrs, shape))
        return dtype, shape

    def numpy(self, node, args, env):
        (g,) = args
        kernel, stride, padding = _window_attrs(node)
        share = g / node.dtype.type(kernel[0] * kernel[1])
        cols = np.broadcast_to(share[..., None, None], share.shape + tuple(kernel))
        return np.ascontiguousarray(
            scatter_windows(cols, env.shape(node.shape), stride, padding))

    def grad(self, node, out_grad):
        attrs = {k: v for k, v in node.attrs.items() if k != "input_shape"}
        return [Node.make("avg_pool2d", (out_grad,), **attrs)]


def _check_same_nc(op: str, x: Node, g: Node) -> None:
    if not all(dims_equal(a, b) for a, b in zip(x.shape[:2], g.shape[:2], strict=True)):
        raise build_error(op, f"x {shape_str(x.shape)} and g {shape_str(g.shape)} differ in "
                          "batch or channels")


# ----- the user-facing functions ---------------------------------------------------------------
def _pool(op: str, x, kernel_size, stride, padding) -> Node:
    (x,) = operands(x)
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(op, "stride", stride, 1)
    return Node.make(op, (x,), kernel=kernel, stride=stride,
                     padding=pair(op, "padding", padding, 0))


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Node:
    """PyTorch's max_pool2d over (N, C, H, W): kernel_size, stride (default: kernel_size)
    and padding are ints or (h, w) pairs; padding is -inf, at most half the kernel."""
    return _pool("max_pool2d", x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Node:
    """PyTorch's avg_pool2d over (N, C, H, W) with count_include_pad=True: the zero
    padding counts in each window's divisor kh * kw."""
    return _pool("avg_pool2d", x, kernel_size, stride, padding)
