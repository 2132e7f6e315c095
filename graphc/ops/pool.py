"""Max and average pooling over NCHW inputs, PyTorch's max_pool2d and avg_pool2d (with
dilation, ceil_mode, count_include_pad, divisor_override) and their 1-D forms, and the
gradient ops.

Max pooling pads with -inf and sends each window's gradient to its first maximum in
row-major window order (a NaN counting as the maximum); average pooling divides each
window's sum by its size within the padded input (count_include_pad, the default) or
within the input. Where windows lie: pool_windows.py. Each op family (max: pool, grad,
gather; avg: pool, grad) is written once for a `Geometry`; the adaptive pools
(adaptive_pool.py) are the same families over adaptive windows.
"""

from __future__ import annotations

import numpy as np

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.ops.conv import check_hw, pair, require_float, require_rank4, span
from graphc.ops.conv1d import as_int, require_rank3
from graphc.ops.leaf import operands
from graphc.ops.pool_windows import (
    AVG_ATTRS,
    MAX_ATTRS,
    Pooling,
    check_attrs,
    first_max_index,
    regular_axis,
    regular_hw,
    scatter_add,
    spread_mean,
    window_max,
    window_mean,
)
from graphc.ops.shape import reshape
from graphc.shapes import dims_equal, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d",
]


class Geometry:
    """Where a pooling op's windows lie: its attributes' check, its output size, the
    run-time check of symbolic sizes, and the per-axis windows for the references."""

    attrs: tuple[str, ...] = ()

    def check(self, op: str, attrs: dict) -> None:
        raise NotImplementedError

    def out_hw(self, op: str, shape, attrs: dict) -> tuple:
        raise NotImplementedError

    def check_input(self, op: str, shape, attrs: dict) -> None:
        """Raise ValueError for an input whose symbolic sizes turned out too small."""

    def axes(self, attrs: dict, in_hw, out_hw) -> tuple:
        raise NotImplementedError

    def pool_attrs(self, attrs: dict) -> dict:
        """The attributes the pool itself takes (a gradient's, without input_shape)."""
        return {k: attrs[k] for k in self.attrs}


class Regular(Geometry):
    """max_pool2d's and avg_pool2d's windows (pool_windows.py)."""

    def __init__(self, names):
        self.attrs = names

    def check(self, op, attrs):
        check_attrs(op, attrs, self.attrs)

    def out_hw(self, op, shape, attrs):
        return regular_hw(op, shape, Pooling.of_attrs(attrs))

    def check_input(self, op, shape, attrs):
        p = Pooling.of_attrs(attrs)
        if shape[2] == 0 or shape[3] == 0:
            raise ValueError(f"{op}: the input's height and width must be nonzero, got shape "
                             f"{tuple(shape)}")
        for axis in range(2):
            if shape[2 + axis] + 2 * p.padding[axis] < span(p.kernel[axis], p.dilation[axis]):
                raise ValueError(f"{op}: kernel {p.kernel[0]}x{p.kernel[1]} is larger than the "
                                 f"padded input: shape {tuple(shape)} with padding {p.padding}")

    def axes(self, attrs, in_hw, out_hw):
        p = Pooling.of_attrs(attrs)
        return tuple(regular_axis(in_hw[a], out_hw[a], p.kernel[a], p.stride[a], p.padding[a],
                                  p.dilation[a], p.count_include_pad) for a in range(2))


def _same_nc(op: str, x: Node, g: Node) -> None:
    if not all(dims_equal(a, b) for a, b in zip(x.shape[:2], g.shape[:2], strict=True)):
        raise build_error(op, f"x {shape_str(x.shape)} and g {shape_str(g.shape)} differ in "
                          "batch or channels")


def _out_shape(op: Op, x: Node, attrs: dict, shape=None) -> tuple:
    op.geometry.check(op.name, attrs)
    shape = x.shape if shape is None else shape
    return tuple(shape[:2]) + tuple(op.geometry.out_hw(op.name, shape, attrs))


def _axes(op: Op, node: Node, x_shape, out_shape) -> tuple:
    op.geometry.check_input(op.name, x_shape, node.attrs)
    return op.geometry.axes(node.attrs, x_shape[2:], out_shape[2:])


# ----- max pooling: the pool, its gradient, and the gradient's gradient in g --------------------
class MaxPool(Op):
    """x (N, C, H, W) -> (N, C, Ho, Wo): the max of each window (padding -inf)."""

    geometry: Geometry
    grad_op = gather_op = ""

    def infer(self, inputs, attrs):
        (x,) = inputs
        require_rank4(self.name, x=x)
        dtype = require_float(self.name, x=x)
        return dtype, _out_shape(self, x, attrs)

    def numpy(self, node, args, env):
        (x,) = args
        return window_max(x, *_axes(self, node, x.shape, env.shape(node.shape)))

    def grad(self, node, out_grad):
        (x,) = node.inputs
        return [Node.make(self.grad_op, (x, out_grad), **node.attrs)]


class MaxPoolGrad(Op):
    """The gradient of max pooling: each window's g added at the first maximum of x in it.
    x (N, C, H, W), g (N, C, Ho, Wo) -> (N, C, H, W); the pool's attrs."""

    geometry: Geometry
    gather_op = ""

    def infer(self, inputs, attrs):
        x, g = inputs
        require_rank4(self.name, x=x, g=g)
        dtype = require_float(self.name, x=x, g=g)
        _same_nc(self.name, x, g)
        check_hw(self.name, "g", g.shape, _out_shape(self, x, attrs)[2:])
        return dtype, x.shape

    def numpy(self, node, args, env):
        x, g = args
        index = first_max_index(x, *_axes(self, node, x.shape, g.shape))
        return scatter_add(index, g, x.shape, node.dtype)

    def grad(self, node, out_grad):
        x, _ = node.inputs
        # Linear in g; piecewise constant in x (the argmax moves in jumps).
        return [None, Node.make(self.gather_op, (x, out_grad), **node.attrs)]


class MaxPoolGather(Op):
    """h (x's shape) read at the first maximum of x in each window: the adjoint of the
    gradient in g. x, h (N, C, H, W) -> (N, C, Ho, Wo); the pool's attrs."""

    geometry: Geometry
    grad_op = ""

    def infer(self, inputs, attrs):
        x, h = inputs
        require_rank4(self.name, x=x, h=h)
        dtype = require_float(self.name, x=x, h=h)
        if not all(dims_equal(a, b) for a, b in zip(x.shape, h.shape, strict=True)):
            raise build_error(self.name, f"h must have x's shape {shape_str(x.shape)}, got "
                              f"{shape_str(h.shape)}")
        return dtype, _out_shape(self, x, attrs)

    def numpy(self, node, args, env):
        x, h = args
        return h.ravel()[first_max_index(x, *_axes(self, node, x.shape,
                                                   env.shape(node.shape)))]

    def grad(self, node, out_grad):
        x, _ = node.inputs
        return [None, Node.make(self.grad_op, (x, out_grad), **node.attrs)]


# ----- average pooling -------------------------------------------------------------------------
class AvgPool(Op):
    """x (N, C, H, W) -> (N, C, Ho, Wo): each window's sum over its divisor."""

    geometry: Geometry
    grad_op = ""

    def infer(self, inputs, attrs):
        (x,) = inputs
        require_rank4(self.name, x=x)
        dtype = require_float(self.name, x=x)
        return dtype, _out_shape(self, x, attrs)

    def numpy(self, node, args, env):
        (x,) = args
        axes = _axes(self, node, x.shape, env.shape(node.shape))
        return window_mean(x, *axes, node.attrs.get("divisor_override"))

    def grad(self, node, out_grad):
        (x,) = node.inputs
        return [Node.make(self.grad_op, (out_grad,), input_shape=x.shape[2:], **node.attrs)]


class AvgPoolGrad(Op):
    """The gradient of average pooling: each window's g / divisor spread over its taps
    inside the input. attrs: input_shape (x's H, W; may be symbolic) and the pool's.
    g (N, C, Ho, Wo) -> (N, C, H, W)."""

    geometry: Geometry
    pool_op = ""

    def infer(self, inputs, attrs):
        (g,) = inputs
        require_rank4(self.name, g=g)
        dtype = require_float(self.name, g=g)
        if "input_shape" not in attrs:
            raise build_error(self.name, "the input_shape attribute is missing")
        shape = g.shape[:2] + tuple(attrs["input_shape"])
        check_hw(self.name, "g", g.shape, _out_shape(self, g, attrs, shape)[2:])
        return dtype, shape

    def numpy(self, node, args, env):
        (g,) = args
        shape = env.shape(node.shape)
        axes = _axes(self, node, shape, g.shape)
        out = spread_mean(g, shape, *axes, node.attrs.get("divisor_override"))
        return np.ascontiguousarray(out)

    def grad(self, node, out_grad):
        return [Node.make(self.pool_op, (out_grad,), **self.geometry.pool_attrs(node.attrs))]


MAX_GEOMETRY, AVG_GEOMETRY = Regular(MAX_ATTRS), Regular(AVG_ATTRS)


@register_class
class MaxPool2d(MaxPool):
    """attrs: kernel, stride, padding, dilation ((h, w) pairs), ceil_mode."""

    name, grad_op, gather_op = "max_pool2d", "max_pool2d_grad", "max_pool2d_gather"
    geometry = MAX_GEOMETRY


@register_class
class MaxPool2dGrad(MaxPoolGrad):
    name, gather_op, geometry = "max_pool2d_grad", "max_pool2d_gather", MAX_GEOMETRY


@register_class
class MaxPool2dGather(MaxPoolGather):
    name, grad_op, geometry = "max_pool2d_gather", "max_pool2d_grad", MAX_GEOMETRY


@register_class
class AvgPool2d(AvgPool):
    """attrs: kernel, stride, padding ((h, w) pairs), ceil_mode, count_include_pad,
    divisor_override (None or an int)."""

    name, grad_op, geometry = "avg_pool2d", "avg_pool2d_grad", AVG_GEOMETRY


@register_class
class AvgPool2dGrad(AvgPoolGrad):
    name, pool_op, geometry = "avg_pool2d_grad", "avg_pool2d", AVG_GEOMETRY


# ----- the user-facing functions ---------------------------------------------------------------
def _flag(op: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise build_error(op, f"{name} must be a bool, got {value!r}")
    return bool(value)


def _window_args(op: str, kernel_size, stride, padding, dilation, ceil_mode, as_pair):
    kernel = as_pair(op, "kernel_size", kernel_size, 1)
    # PyTorch: stride None (or an empty list) means the kernel size.
    empty = isinstance(stride, (list, tuple)) and len(stride) == 0
    stride = kernel if stride is None or empty else as_pair(op, "stride", stride, 1)
    return dict(kernel=kernel, stride=stride, padding=as_pair(op, "padding", padding, 0),
                dilation=as_pair(op, "dilation", dilation, 1),
                ceil_mode=_flag(op, "ceil_mode", ceil_mode))


def _avg_args(op, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, as_pair) -> dict:
    attrs = _window_args(op, kernel_size, stride, padding, 1, ceil_mode, as_pair)
    del attrs["dilation"]
    if divisor_override is not None and (
            not isinstance(divisor_override, (int, np.integer)) or
            isinstance(divisor_override, bool) or divisor_override == 0):
        raise build_error(op, f"divisor_override must be a nonzero int or None, got "
                          f"{divisor_override!r}")
    attrs.update(count_include_pad=_flag(op, "count_include_pad", count_include_pad),
                 divisor_override=None if divisor_override is None else int(divisor_override))
    return attrs


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> Node:
    """PyTorch's max_pool2d over (N, C, H, W): kernel_size, stride (default: kernel_size),
    padding (-inf, at most half the kernel) and dilation are ints or (h, w) pairs;
    ceil_mode rounds the output size up (the last window starting inside the input or its
    left padding). The gradient goes to each window's first maximum."""
    (x,) = operands(x)
    attrs = _window_args("max_pool2d", kernel_size, stride, padding, dilation, ceil_mode, pair)
    return Node.make("max_pool2d", (x,), **attrs)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Node:
    """PyTorch's avg_pool2d over (N, C, H, W): each window's sum over its size within the
    zero-padded input (count_include_pad, the default) or within the input alone, or over
    divisor_override when given. Arguments as max_pool2d's, without dilation."""
    (x,) = operands(x)
    attrs = _avg_args("avg_pool2d", kernel_size, stride, padding, ceil_mode,
                      count_include_pad, divisor_override, pair)
    return Node.make("avg_pool2d", (x,), **attrs)


def _as_1d(op: str):
    """An int argument of a 1-D pool as the (1, n) pair of its 2-D pool over a height of 1."""
    def as_pair(_, name, value, minimum):
        return (1 if name in ("kernel_size", "stride", "dilation") else 0,
                as_int(op, name, value, minimum))
    return as_pair


def _pool1d(op: str, x, attrs: dict) -> Node:
    """The 1-D pool as its 2-D pool over a height of 1, after the 2-D pool's checks worded
    for the 1-D one."""
    (x,) = operands(x)
    require_rank3(op, x=x)
    k, p = attrs["kernel"][1], attrs["padding"][1]
    if p > k // 2:
        raise build_error(op, f"padding {p} must be at most half the kernel {k}")
    length, extent = x.shape[2], span(k, attrs.get("dilation", (1, 1))[1])
    if isinstance(length, int) and length == 0:
        raise build_error(op, f"the input's length must be nonzero, got {shape_str(x.shape)}")
    if isinstance(length, int) and length + 2 * p < extent:
        raise build_error(op, f"kernel {k} (spanning {extent}) is longer than the padded "
                          f"input: {shape_str(x.shape)} with padding {p}")
    out = Node.make(op.replace("1d", "2d"), (reshape(x, (*x.shape[:2], 1, x.shape[2])),),
                    **attrs)
    return reshape(out, (out.shape[0], out.shape[1], out.shape[3]))


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> Node:
    """PyTorch's max_pool1d over (N, C, L); int arguments as max_pool2d's."""
    op = "max_pool1d"
    attrs = _window_args(op, kernel_size, stride, padding, dilation, ceil_mode, _as_1d(op))
    return _pool1d(op, x, attrs)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Node:
    """PyTorch's avg_pool1d over (N, C, L); int arguments as avg_pool2d's."""
    op = "avg_pool1d"
    attrs = _avg_args(op, kernel_size, stride, padding, ceil_mode, count_include_pad, None,
                      _as_1d(op))
    return _pool1d(op, x, attrs)
