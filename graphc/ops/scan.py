"""Cumulative ops along one axis: cumsum, cumprod (primitive scans) and cummax, cummin
(the index of the running extremum is a primitive; the values are gathered at it, so
their gradient goes to that index, as in PyTorch).

Gradients are graph: cumsum's is a reverse cumsum; cumprod's is exact where the input
holds zeros (PyTorch's rule: before a line's first zero, the reverse cumsum of g * out
divided by x; at the first zero, the same sum over the products with that zero taken
out; after it, 0)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register
from graphc.ops.arguments import one_axis, pick, values
from graphc.ops.elementwise import cast, equal, logical_and, where
from graphc.ops.shape import reshape
from graphc.shapes import shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "cumsum", "cumprod", "cummax", "cummin",
]


class Scan(Op):
    """attrs: axis, reverse (cumsum only: from the end of the axis). out[..., i, ...]
    combines x[..., :i+1, ...] (sum or product); ints and bools accumulate in int64
    (NumPy, PyTorch)."""

    def __init__(self, name: str, ufunc):
        self.name = name
        self.ufunc = ufunc

    def infer(self, inputs, attrs):
        (x,) = inputs
        if not 0 <= attrs["axis"] < x.ndim:
            raise build_error(self.name, f"axis {attrs['axis']} is out of range for the input "
                              f"{shape_str(x.shape)}")
        return (x.dtype if dtypes.is_float(x.dtype) else dtypes.INT64), x.shape

    def numpy(self, node, args, env):
        (x,) = args
        axis = node.attrs["axis"]
        x = x.astype(node.dtype, copy=False)
        if node.attrs.get("reverse"):
            return np.flip(self.ufunc.accumulate(np.flip(x, axis), axis=axis), axis)
        with np.errstate(all="ignore"):
            return self.ufunc.accumulate(x, axis=axis)

    def grad(self, node, out_grad):
        (x,) = node.inputs
        axis = node.attrs["axis"]
        if self.name == "cumsum":
            return [Node.make("cumsum", (out_grad,), axis=axis,
                              reverse=not node.attrs["reverse"])]
        return [_cumprod_grad(x, node, out_grad, axis)]


register(Scan("cumsum", np.add))
register(Scan("cumprod", np.multiply))


def _cumprod_grad(x: Node, out: Node, g: Node, axis: int) -> Node:
    def rsum(v):
        return Node.make("cumsum", (v,), axis=axis, reverse=True)

    is_zero = equal(x, 0.0)
    zeros_so_far = Node.make("cumsum", (cast(is_zero, "int32"),), axis=axis, reverse=False)
    before = equal(zeros_so_far, 0)
    first = logical_and(is_zero, equal(zeros_so_far, 1))
    before_zero = rsum(g * out) / where(before, x, 1.0)
    without_first = Node.make("cumprod", (where(first, 1.0, x),), axis=axis)
    at_zero = rsum(g * without_first)
    return where(before, before_zero, where(first, at_zero, 0.0))


class RunningExtremumIndex(Op):
    """attrs: axis. The index (int64) of the running maximum (cummax_index) or minimum
    along the axis: the last position holding it, and a NaN, once met, stays the extremum
    (a later NaN takes over): PyTorch's cummax/cummin."""

    differentiable = False

    def __init__(self, name: str, better):
        self.name = name
        self.better = better

    def infer(self, inputs, attrs):
        (x,) = inputs
        if not 0 <= attrs["axis"] < x.ndim:
            raise build_error(self.name, f"axis {attrs['axis']} is out of range for the input "
                              f"{shape_str(x.shape)}")
        if x.dtype == dtypes.BOOL:
            raise build_error(self.name, "does not take bool inputs", dtype=True)
        return dtypes.INT64, x.shape

    def numpy(self, node, args, env):
        (x,) = args
        axis = node.attrs["axis"]
        moved = np.moveaxis(x, axis, -1)
        out = np.zeros(moved.shape, np.int64)
        if moved.shape[-1] == 0:
            return np.moveaxis(out, -1, axis)
        best = moved[..., 0].copy()
        where_best = np.zeros(best.shape, np.int64)
        for i in range(moved.shape[-1]):
            value = moved[..., i]
            with np.errstate(invalid="ignore"):
                take = self.better(value, best) | (value != value)
            best = np.where(take, value, best)
            where_best = np.where(take, i, where_best)
            out[..., i] = where_best
        return np.moveaxis(out, -1, axis)


register(RunningExtremumIndex("cummax_index", np.greater_equal))
register(RunningExtremumIndex("cummin_index", np.less_equal))


# ----- builders ---------------------------------------------------------------------------
def _scan_operand(op: str, x, axis, dim):
    (x,) = values(op, x)
    axis = pick(op, "axis", axis, "dim", dim)
    if axis is None:  # NumPy: the flattened input
        return reshape(x, (-1,)), 0
    return x, one_axis(op, axis, x)


def cumsum(x, axis=None, *, dim=None) -> Node:
    """Running sums along an axis (axis None: of the flattened input, as NumPy); ints in
    int64."""
    x, axis = _scan_operand("cumsum", x, axis, dim)
    return Node.make("cumsum", (x,), axis=axis, reverse=False)


def cumprod(x, axis=None, *, dim=None) -> Node:
    """Running products along an axis (axis None: of the flattened input); the gradient is
    exact where the input holds zeros (PyTorch's rule)."""
    x, axis = _scan_operand("cumprod", x, axis, dim)
    return Node.make("cumprod", (x,), axis=axis)


class CumResult(NamedTuple):
    """What cummax and cummin give (PyTorch's torch.return_types.cummax)."""

    values: Node
    indices: Node


def _running(op: str, x, dim, axis) -> CumResult:
    (x,) = values(op, x)
    chosen = pick(op, "dim", dim, "axis", axis)
    if chosen is None:
        raise build_error(op, "needs dim= (or axis=)")
    axis = one_axis(op, chosen, x, "dim")
    indices = Node.make(f"{op}_index", (x,), axis=axis)
    return CumResult(Node.make("gather", (x, indices), axis=axis), indices)


def cummax(x, dim=None, *, axis=None) -> CumResult:
    """torch.cummax: (values, indices) of the running maximum along dim; the index is the
    last position holding it, and the values' gradient goes to that index."""
    return _running("cummax", x, dim, axis)


def cummin(x, dim=None, *, axis=None) -> CumResult:
    """torch.cummin: (values, indices) of the running minimum along dim."""
    return _running("cummin", x, dim, axis)
