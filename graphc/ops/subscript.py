"""`x[...]` with NumPy's indexing rules: basic indexing (ints, slices, `...`, None; the
shape module) plus integer arrays (lists, NumPy arrays, int graph values) and boolean masks,
composed of slice, transpose, reshape and take.

NumPy's advanced-indexing rules hold: the index arrays (and ints among them) broadcast
together; their broadcast shape replaces the indexed axes where those are adjacent, and
goes in front otherwise; negative indices count from the end, and one out of range raises
(at build time for constants of known axes, at call time otherwise, on every backend). A
boolean mask stands for the integer arrays of its True positions, so it must be a constant
(a NumPy array, a list or gc.constant): the count of True elements is the result's size,
and graph shapes are fixed when the graph is built."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error, user_location
from graphc.ir.node import Node
from graphc.ops.elementwise import add, cast, mul
from graphc.ops.indexing import wrap_index
from graphc.ops.leaf import constant, dim_value, operands
from graphc.ops.shape import broadcast_to, reshape, transpose
from graphc.ops.shape import getitem as basic_getitem
from graphc.shapes import as_dim, broadcast, shape_str, size

__all__ = [  # the public builders (graphc/dsl.py)
    "getitem",
]

_BASIC = (slice, type(None), type(Ellipsis))


def _is_int(item) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _array_of(item):
    """An index item as a NumPy array (a constant) or an int graph value, or None when it
    is a basic item."""
    if isinstance(item, _BASIC) or _is_int(item):
        return None
    if isinstance(item, Node):
        if item.op == "constant":
            return item.value
        if item.dtype == dtypes.BOOL:
            raise build_error("getitem", "a boolean mask index must be a constant (a NumPy "
                              "array, a list or gc.constant): its count of True elements is the "
                              "result's size, and graph shapes are fixed when the graph is "
                              "built; gc.where(mask, x, 0) or gc.masked_fill keep x's shape")
        if not dtypes.is_int(item.dtype):
            raise build_error("getitem", f"an index value must be int or bool, got "
                              f"{item.dtype.name}", dtype=True)
        return item
    if isinstance(item, (bool, np.bool_)):
        raise build_error("getitem", "a bool scalar is not an index (use a boolean array "
                          "mask, or None for a new axis)")
    if isinstance(item, (list, tuple, np.ndarray)):
        array = np.asarray(item)
        if array.size == 0 and array.dtype.kind == "f":
            array = array.astype(np.int64)
        if array.dtype.kind in "biu":
            return array
    raise build_error("getitem", f"only ints, slices, ..., None, int arrays and boolean masks "
                      f"index a value, got {item!r}")


def getitem(x, index) -> Node:
    """x[index], NumPy's basic and advanced indexing (see the module docstring)."""
    (x,) = operands(x)
    items = index if isinstance(index, tuple) else (index,)
    arrays = [_array_of(item) for item in items]
    if all(a is None for a in arrays):
        return basic_getitem(x, index)
    expanded: list = []  # items, masks replaced by their integer arrays
    for item, array in zip(items, arrays):
        if isinstance(array, np.ndarray) and array.dtype == np.bool_:
            if array.ndim == 0:
                raise build_error("getitem", "a 0-d boolean mask is not an index (use None for "
                                  "a new axis)")
            expanded.extend(np.nonzero(array))
            expanded.append(("mask", array.shape))  # checked against the axes it covers
        else:
            expanded.append(item if array is None else array)
    return _advanced(x, expanded)


def _advanced(x: Node, items: list) -> Node:
    """x indexed by items: basic ones, index arrays, and ("mask", shape) markers after the
    arrays a boolean mask became."""
    consumed = sum(1 for it in items if not (it is None or it is Ellipsis
                                              or isinstance(it, tuple)))
    if sum(it is Ellipsis for it in items) > 1:
        raise build_error("getitem", "an index can only have a single ellipsis")
    if consumed > x.ndim:
        raise build_error("getitem", f"too many indices ({consumed}) for shape "
                          f"{shape_str(x.shape)}")
    ellipsis = [k for k, it in enumerate(items) if it is Ellipsis]
    if ellipsis:
        k = ellipsis[0]
        items = items[:k] + [slice(None)] * (x.ndim - consumed) + items[k + 1:]
    else:
        items = items + [slice(None)] * (x.ndim - consumed)
    basic, arrays, positions, axis = [], [], [], 0
    for item in items:
        if isinstance(item, tuple):  # ("mask", shape): the arrays before it covered these axes
            _check_mask(x, axis - len(item[1]), item[1])
            continue
        if item is None or isinstance(item, slice):
            basic.append(item)
            axis += item is not None
            continue
        dim = x.shape[axis]
        positions.append(len(basic))
        arrays.append(_checked(item, dim, axis))
        basic.append(slice(None))
        axis += 1
    y = basic_getitem(x, tuple(basic))
    return _take_combined(y, arrays, positions)


def _check_mask(x: Node, first: int, shape) -> None:
    covered = x.shape[first:first + len(shape)]
    if tuple(covered) != tuple(shape):
        raise IndexError(f"getitem: a boolean mask of shape {shape_str(shape)} does not match "
                         f"the axes {shape_str(covered)} it indexes in {shape_str(x.shape)} "
                         f"(at {user_location()})")


def _checked(item, dim, axis: int):
    """An index array (or int) for an axis of size dim: a constant checked and wrapped now
    where the size is known, a graph value wrapped (and checked) at call time."""
    if isinstance(item, Node):
        return wrap_index(item, dim, "getitem", axis)
    array = np.asarray(item, dtype=np.int64)
    if not isinstance(dim, int):
        return wrap_index(constant(array), dim, "getitem", axis)
    bad = (array < -dim) | (array >= dim)
    if bad.any():
        raise IndexError(f"getitem: index {int(array[bad].ravel()[0])} is out of bounds for axis "
                         f"{axis} with size {dim} (at {user_location()})")
    return np.where(array < 0, array + dim, array)


def _take_combined(y: Node, arrays: list, positions: list[int]) -> Node:
    """y with the axes at `positions` indexed by the (nonnegative) arrays, broadcast
    together: their broadcast shape replaces the axes where these are adjacent, or leads."""
    shapes = [a.shape if isinstance(a, Node) else np.shape(a) for a in arrays]
    try:
        together = broadcast(*shapes)
    except ValueError:
        raise build_error("getitem", "index arrays of shapes "
                          f"{', '.join(shape_str(s) for s in shapes)} do not broadcast") from None
    adjacent = positions == list(range(positions[0], positions[0] + len(positions)))
    if not adjacent:
        rest = [a for a in range(y.ndim) if a not in positions]
        y = transpose(y, tuple(positions) + tuple(rest))
        positions = list(range(len(positions)))
    first, count = positions[0], len(positions)
    dims = y.shape[first:first + count]
    merged = reshape(y, y.shape[:first] + (as_dim(size(dims)),) + y.shape[first + count:])
    linear = _linear_index(arrays, dims, together)
    return Node.make("take", (merged, linear), axis=first, caller="getitem")


def _linear_index(arrays: list, dims, shape) -> Node:
    """The row-major flat index over `dims` of the index arrays (broadcast to `shape`)."""
    if all(isinstance(a, np.ndarray) for a in arrays) and all(isinstance(d, int) for d in dims):
        flat = np.zeros(shape, np.int64)
        for a, stride in zip(arrays, _strides(dims)):
            flat = flat + np.asarray(a, np.int64) * stride
        return constant(flat)
    total = None
    for a, stride in zip(arrays, _strides(dims)):
        (value,) = operands(a) if not isinstance(a, Node) else (a,)
        value = cast(value, "int64")
        if not (isinstance(stride, int) and stride == 1):
            value = mul(value, stride if isinstance(stride, int) else dim_value(stride, "int64"))
        total = value if total is None else add(total, value)
    return broadcast_to(total, shape)


def _strides(dims) -> list:
    strides, running = [], 1
    for d in reversed(dims):
        strides.append(running)
        running = as_dim(running * d)
    return strides[::-1]
