"""Adaptive pooling, PyTorch's adaptive_avg_pool2d and adaptive_max_pool2d: a given output
size, window i along an axis of size H covering floor(i * H / O) <= h < ceil((i + 1) * H / O).

The ops are pool.py's families over adaptive windows (attrs: output_size), so the
gradients are the same: max to each window's first maximum, avg spread evenly. Global
average pooling (output 1 x 1) is a mean over H and W; windows that tile the input
evenly are avg_pool2d's. Input sizes may be symbolic: windows are placed at run time.
"""

from __future__ import annotations

import numpy as np

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import register_class
from graphc.ops.conv import require_float, require_rank4
from graphc.ops.leaf import operands
from graphc.ops.pool import AvgPool, AvgPoolGrad, Geometry, MaxPool, MaxPoolGather, MaxPoolGrad
from graphc.ops.pool_windows import adaptive_axis
from graphc.shapes import shape_str

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d"]


def _output_size(op: str, value) -> tuple[int, int]:
    """A positive int or pair of them (attributes of nodes built without the DSL)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        raise build_error(op, f"output_size must be a pair of positive ints, got {value!r}")
    return tuple(value)


class Adaptive(Geometry):
    """Adaptive windows: attrs output_size (Ho, Wo)."""

    attrs = ("output_size",)

    def check(self, op, attrs):
        if "output_size" not in attrs:
            raise build_error(op, "the output_size attribute is missing")
        _output_size(op, attrs["output_size"])

    def out_hw(self, op, shape, attrs):
        require_nonempty(op, shape)
        return tuple(attrs["output_size"])

    def check_input(self, op, shape, attrs):
        if shape[2] == 0 or shape[3] == 0:
            raise ValueError(f"{op}: the input's height and width must be nonzero, got shape "
                             f"{tuple(shape)}")

    def axes(self, attrs, in_hw, out_hw):
        return tuple(adaptive_axis(in_hw[a], out_hw[a]) for a in range(2))


def require_nonempty(op: str, shape) -> None:
    if any(isinstance(d, int) and d == 0 for d in shape[2:]):
        raise build_error(op, f"the input's height and width must be nonzero, got "
                          f"{shape_str(shape)}")


ADAPTIVE = Adaptive()


@register_class
class AdaptiveMaxPool2d(MaxPool):
    """attrs: output_size (Ho, Wo). (N, C, H, W) -> (N, C, Ho, Wo)."""

    name = "adaptive_max_pool2d"
    grad_op, gather_op = "adaptive_max_pool2d_grad", "adaptive_max_pool2d_gather"
    geometry = ADAPTIVE


@register_class
class AdaptiveMaxPool2dGrad(MaxPoolGrad):
    name, gather_op, geometry = "adaptive_max_pool2d_grad", "adaptive_max_pool2d_gather", \
        ADAPTIVE


@register_class
class AdaptiveMaxPool2dGather(MaxPoolGather):
    name, grad_op, geometry = "adaptive_max_pool2d_gather", "adaptive_max_pool2d_grad", \
        ADAPTIVE


@register_class
class AdaptiveAvgPool2d(AvgPool):
    """attrs: output_size (Ho, Wo). (N, C, H, W) -> (N, C, Ho, Wo)."""

    name, grad_op, geometry = "adaptive_avg_pool2d", "adaptive_avg_pool2d_grad", ADAPTIVE


@register_class
class AdaptiveAvgPool2dGrad(AvgPoolGrad):
    name, pool_op, geometry = "adaptive_avg_pool2d_grad", "adaptive_avg_pool2d", ADAPTIVE


# ----- the user-facing functions ---------------------------------------------------------------
def _resolve(op: str, x: Node, output_size) -> tuple:
    """(Ho, Wo) from an int, a pair, or a pair with None (that axis keeps its size)."""
    items = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(items) != 2 or not all(
            v is None or isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            for v in items):
        raise build_error(op, f"output_size must be an int or a pair of ints (or None), got "
                          f"{output_size!r}")
    if any(v is not None and v < 1 for v in items):
        raise build_error(op, f"output_size must be positive, got {output_size!r}")
    size = tuple(x.shape[2 + a] if v is None else int(v) for a, v in enumerate(items))
    for a, v in enumerate(size):
        if not isinstance(v, int):
            raise build_error(op, f"output_size {output_size!r} keeps axis {2 + a} of x "
                              f"{shape_str(x.shape)}, whose size is symbolic: give a number")
    return size


def _checked(op: str, x) -> Node:
    """x, checked as the ops check it: 4-D, float, not empty."""
    (x,) = operands(x)
    require_rank4(op, x=x)
    require_float(op, x=x)
    require_nonempty(op, x.shape)
    return x


def _tiling(x: Node, size) -> tuple | None:
    """The kernel of windows that tile x's static (H, W) evenly at this output size."""
    h, w = x.shape[2:]
    if isinstance(h, int) and isinstance(w, int) and h % size[0] == 0 and w % size[1] == 0:
        return h // size[0], w // size[1]
    return None


def adaptive_avg_pool2d(x, output_size) -> Node:
    """PyTorch's adaptive_avg_pool2d over (N, C, H, W): output_size an int or an (h, w)
    pair (None keeps that axis); window i spans floor(i H / O) <= h < ceil((i + 1) H / O).
    Output 1 is global average pooling."""
    op = "adaptive_avg_pool2d"
    x = _checked(op, x)
    size = _resolve(op, x, output_size)
    if size == (1, 1):
        return x.mean(axis=(2, 3), keepdims=True)
    kernel = _tiling(x, size)
    if kernel is not None:
        return Node.make("avg_pool2d", (x,), kernel=kernel, stride=kernel, padding=(0, 0),
                         ceil_mode=False, count_include_pad=True, divisor_override=None)
    return Node.make(op, (x,), output_size=size)


def adaptive_max_pool2d(x, output_size) -> Node:
    """PyTorch's adaptive_max_pool2d over (N, C, H, W), windows as adaptive_avg_pool2d's;
    output 1 is global max pooling. The gradient goes to each window's first maximum."""
    op = "adaptive_max_pool2d"
    x = _checked(op, x)
    size = _resolve(op, x, output_size)
    kernel = _tiling(x, size)
    if kernel is not None and size != (1, 1):
        return Node.make("max_pool2d", (x,), kernel=kernel, stride=kernel, padding=(0, 0),
                         dilation=(1, 1), ceil_mode=False)
    return Node.make(op, (x,), output_size=size)
