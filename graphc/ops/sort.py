"""Sorting along one axis: `argsort` is the primitive (a stable sort of indices); `sort` and
`topk` gather the values at its indices, so their gradient goes to where each value came
from (PyTorch's rule). Always stable: equal values keep their order, in ascending and in
descending sorts; a NaN sorts above every number (last ascending, first descending), as in
PyTorch."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.ops.arguments import int_argument, one_axis, pick, values
from graphc.shapes import shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "argsort", "sort", "topk",
]


def stable_argsort(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Indices that sort x stably along an axis (NaN above every number)."""
    if not descending:
        return np.argsort(x, axis=axis, kind="stable")
    n = x.shape[axis]
    flipped = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return n - 1 - np.flip(flipped, axis)


@register_class
class ArgSort(Op):
    """attrs: axis, descending. The int64 indices that sort x along the axis, stably."""

    name = "argsort"
    differentiable = False

    def infer(self, inputs, attrs):
        (x,) = inputs
        if not 0 <= attrs["axis"] < x.ndim:
            raise build_error(self.name, f"axis {attrs['axis']} is out of range for the input "
                              f"{shape_str(x.shape)}")
        return dtypes.INT64, x.shape

    def numpy(self, node, args, env):
        (x,) = args
        return stable_argsort(x, node.attrs["axis"], node.attrs["descending"]).astype(np.int64)


class SortResult(NamedTuple):
    """What sort and topk give (PyTorch's torch.return_types.sort)."""

    values: Node
    indices: Node


def _sort_axis(op: str, x, dim, axis) -> tuple[Node, int]:
    (x,) = values(op, x)
    if x.ndim == 0:
        raise build_error(op, "needs an input of at least one dim")
    return x, one_axis(op, pick(op, "dim", dim, "axis", axis, -1), x, "dim")


def argsort(x, dim=None, descending: bool = False, stable: bool = True, *, axis=None) -> Node:
    """Indices (int64) that sort x along dim (default the last), stably (`stable` is
    accepted for PyTorch's signature; every graphc sort is stable)."""
    x, axis = _sort_axis("argsort", x, dim, axis)
    return Node.make("argsort", (x,), axis=axis, descending=bool(descending))


def sort(x, dim=None, descending: bool = False, stable: bool = True, *,
         axis=None) -> SortResult:
    """torch.sort: (values, indices) sorted along dim (default the last), stably; the
    values' gradient goes back to where each value came from."""
    x, axis = _sort_axis("sort", x, dim, axis)
    indices = Node.make("argsort", (x,), axis=axis, descending=bool(descending))
    return SortResult(Node.make("gather", (x, indices), axis=axis), indices)


def topk(x, k: int, dim=None, largest: bool = True, sorted: bool = True, *,  # noqa: A002
         axis=None) -> SortResult:
    """torch.topk: (values, indices) of the k largest (largest=False: smallest) along dim
    (default the last), in sorted order; among equal values the first positions win."""
    x, axis = _sort_axis("topk", x, dim, axis)
    k = int_argument("topk", "k", k, 0)
    size = x.shape[axis]
    if not isinstance(size, int):
        raise build_error("topk", f"axis {axis} of {shape_str(x.shape)} has symbolic size "
                          f"{size}; topk needs a static size")
    if k > size:
        raise build_error("topk", f"k = {k} is larger than the size {size} of axis {axis} of "
                          f"{shape_str(x.shape)}")
    order = Node.make("argsort", (x,), axis=axis, descending=bool(largest))
    index = tuple((0, k, 1) if a == axis else (0, d, 1) if isinstance(d, int) else (None, None, 1)
                  for a, d in enumerate(x.shape))
    indices = order if k == size else Node.make("slice", (order,), index=index)
    return SortResult(Node.make("gather", (x, indices), axis=axis), indices)
