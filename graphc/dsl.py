"""The user-facing graph-building functions: leaves, operators and every op as gc.NAME.

Functions here only convert arguments (Python scalars are weak, as in NumPy 2) and build
nodes; each op's rules live in its module under graphc/ops.
"""

from __future__ import annotations

import builtins
import itertools
import numbers
from collections.abc import Sequence

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.elementwise import pow_operands
from graphc.ops.reduction import Reduction
from graphc.ops.registry import get_op
from graphc.ops.shape import Reshape, normalize_slice
from graphc.shapes import as_shape, dims_equal, normalize_axis, shape_str

Value = Node
_param_ids = itertools.count()


# ----- leaves ----------------------------------------------------------------------------
def input(name: str, shape, dtype="float32") -> Node:  # noqa: A001 (the DESIGN.md name)
    """A value given at each call. String dims ("N") are symbolic, bound per call."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"input: name must be a non-empty string, got {name!r}")
    try:
        shape = as_shape(shape)
        dtype = dtypes.as_dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"input '{name}': {exc}") from None
    return Node.make("input", (), name=name, shape=shape, dtype=dtype.name)


def param(name: str, value) -> Node:
    """A trainable value; the node owns a copy of `value` (read and write it as .value)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"param: name must be a non-empty string, got {name!r}")
    array = np.array(value, copy=True, order="C")
    try:
        dtype = dtypes.as_dtype(array.dtype)
    except TypeError as exc:
        raise TypeError(f"param '{name}': {exc}") from None
    node = Node.make("param", (), name=name, uid=next(_param_ids), shape=array.shape,
                     dtype=dtype.name)
    object.__setattr__(node, "_value", array)
    return node


def constant(value, dtype=None) -> Node:
    """A fixed array (equal constants are one node)."""
    array = np.asarray(value, dtype=dtype)
    try:
        dtypes.as_dtype(array.dtype)
    except TypeError as exc:
        raise TypeError(f"constant: {exc}") from None
    return Node.make("constant", (), value=array)


def _is_weak(x) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def operands(*xs, reference=None) -> tuple[Node, ...]:
    """Graph values for mixed operands; Python scalars take the dtype of the others."""
    nodes = [x for x in xs if isinstance(x, Node)]
    if reference is None:
        reference = dtypes.promote(*(n.dtype for n in nodes)) if nodes else None
    out = []
    for x in xs:
        if isinstance(x, Node):
            out.append(x)
        elif _is_weak(x) and reference is not None:
            out.append(constant(x, dtypes.weak_scalar_dtype(x, reference)))
        elif isinstance(x, (numbers.Number, np.ndarray, np.generic, list, tuple)):
            out.append(constant(x))
        else:
            raise TypeError(f"cannot use {type(x).__name__} {x!r} as a graph value")
    return tuple(out)


def _elementwise(op: str, *xs, **attrs) -> Node:
    return Node.make(op, operands(*xs), **attrs)


# ----- elementwise ----------------------------------------------------------------------
def add(a, b) -> Node: return _elementwise("add", a, b)
def sub(a, b) -> Node: return _elementwise("sub", a, b)
def mul(a, b) -> Node: return _elementwise("mul", a, b)
def div(a, b) -> Node: return _elementwise("div", a, b)
def pow(a, b) -> Node:  # noqa: A001
    return Node.make("pow", pow_operands(*operands(a, b)))
def maximum(a, b) -> Node: return _elementwise("maximum", a, b)
def minimum(a, b) -> Node: return _elementwise("minimum", a, b)
def neg(x) -> Node: return _elementwise("neg", x)
def abs(x) -> Node: return _elementwise("abs", x)  # noqa: A001
def sign(x) -> Node: return _elementwise("sign", x)
def exp(x) -> Node: return _elementwise("exp", x)
def log(x) -> Node: return _elementwise("log", x)
def sqrt(x) -> Node: return _elementwise("sqrt", x)
def sin(x) -> Node: return _elementwise("sin", x)
def cos(x) -> Node: return _elementwise("cos", x)
def tanh(x) -> Node: return _elementwise("tanh", x)
def erf(x) -> Node: return _elementwise("erf", x)
def sigmoid(x) -> Node: return _elementwise("sigmoid", x)
def relu(x) -> Node: return _elementwise("relu", x)
def equal(a, b) -> Node: return _elementwise("equal", a, b)
def not_equal(a, b) -> Node: return _elementwise("not_equal", a, b)
def less(a, b) -> Node: return _elementwise("less", a, b)
def less_equal(a, b) -> Node: return _elementwise("less_equal", a, b)
def greater(a, b) -> Node: return _elementwise("greater", a, b)
def greater_equal(a, b) -> Node: return _elementwise("greater_equal", a, b)
def logical_and(a, b) -> Node: return _elementwise("logical_and", a, b)
def logical_or(a, b) -> Node: return _elementwise("logical_or", a, b)
def logical_not(x) -> Node: return _elementwise("logical_not", x)


def leaky_relu(x, slope: float = 0.01) -> Node:
    """x where x > 0, else slope * x."""
    return _elementwise("leaky_relu", x, slope=float(slope))


def gelu(x, approximate: str = "none") -> Node:
    """x * Phi(x) (exact, erf form); approximate="tanh" gives the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise build_error("gelu", f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _elementwise("gelu" if approximate == "none" else "gelu_tanh", x)


def clip(x, lo=None, hi=None) -> Node:
    """x limited to [lo, hi] (either may be None); the gradient is 1 inside, bounds included."""
    for bound in (lo, hi):
        if bound is not None and not _is_weak(bound):
            raise build_error("clip", f"bounds must be Python numbers or None, got {bound!r}")
    if lo is not None and hi is not None and lo > hi:
        raise build_error("clip", f"lo {lo} is greater than hi {hi}")
    return _elementwise("clip", x, lo=lo, hi=hi)


def where(condition, a, b) -> Node:
    """a where condition (a bool value) holds, else b; broadcast like numpy.where."""
    (condition,) = operands(condition, reference=dtypes.BOOL)
    a, b = operands(a, b)
    return Node.make("where", (condition, a, b))


def cast(x, dtype) -> Node:
    """x converted to dtype (float to int truncates toward zero, as NumPy)."""
    (x,) = operands(x)
    dtype = dtypes.as_dtype(dtype)
    return x if x.dtype == dtype else Node.make("cast", (x,), dtype=dtype.name)


def stop_gradient(x) -> Node:
    """x itself, but gc.grad treats it as a constant."""
    return Node.make("stop_gradient", operands(x))


# ----- reductions -----------------------------------------------------------------------
def _reduce(op: str, x, axis, keepdims) -> Node:
    (x,) = operands(x)
    reduction: Reduction = get_op(op)
    return Node.make(op, (x,), **reduction.normalize(x, axis, keepdims))


def sum(x, axis=None, keepdims: bool = False) -> Node:  # noqa: A001
    return _reduce("sum", x, axis, keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Node:
    return _reduce("mean", x, axis, keepdims)


def max(x, axis=None, keepdims: bool = False) -> Node:  # noqa: A001
    """Largest value over axes; the gradient is shared equally among tied maxima."""
    return _reduce("max", x, axis, keepdims)


def min(x, axis=None, keepdims: bool = False) -> Node:  # noqa: A001
    return _reduce("min", x, axis, keepdims)


def argmax(x, axis=None, keepdims: bool = False) -> Node:
    """Index of the first maximum (int64); of the flattened value when axis is None."""
    return _reduce("argmax", x, axis, keepdims)


# ----- linear algebra ---------------------------------------------------------------------
def matmul(a, b) -> Node:
    """numpy.matmul: 2-D, batched with broadcast batch dims, and 1-D operands."""
    a, b = operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise build_error("matmul", f"operands must not be scalars, got {shape_str(a.shape)} "
                          f"and {shape_str(b.shape)}")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if not dims_equal(inner_a, inner_b):
        raise build_error("matmul", f"inner dims differ: {shape_str(a.shape)} @ "
                          f"{shape_str(b.shape)} ({inner_a} != {inner_b})")
    squeeze = []
    if a.ndim == 1:
        a = reshape(a, (1, a.shape[0]))
        squeeze.append(-2)
    if b.ndim == 1:
        b = reshape(b, (b.shape[0], 1))
        squeeze.append(-1)
    out = Node.make("matmul", (a, b))
    if squeeze:
        keep = [d for k, d in enumerate(out.shape) if k - out.ndim not in squeeze]
        out = reshape(out, tuple(keep))
    return out


# ----- shapes -----------------------------------------------------------------------------
def reshape(x, shape) -> Node:
    """numpy.reshape; one dim may be -1. Dims may be symbolic (x.shape[0], or "N")."""
    (x,) = operands(x)
    target = Reshape.resolve(x, shape)
    if target == x.shape:
        return x
    return Node.make("reshape", (x,), shape=target)


def transpose(x, axes=None) -> Node:
    """Permute axes (reverse them when axes is None), as numpy.transpose."""
    (x,) = operands(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    try:
        axes = tuple(normalize_axis(a, x.ndim) for a in axes)
    except (TypeError, ValueError) as exc:
        raise build_error("transpose", f"{exc} (input shape {shape_str(x.shape)})") from None
    if axes == tuple(range(x.ndim)):
        return x
    return Node.make("transpose", (x,), axes=axes)


def broadcast_to(x, shape) -> Node:
    """numpy.broadcast_to."""
    (x,) = operands(x)
    shape = as_shape(shape)
    if shape == x.shape:
        return x
    return Node.make("broadcast_to", (x,), shape=shape)


def concat(values: Sequence, axis: int = 0) -> Node:
    """numpy.concatenate of values along an existing axis."""
    values = operands(*values)
    if not values:
        raise build_error("concat", "needs at least one input")
    try:
        axis = normalize_axis(axis, values[0].ndim)
    except (TypeError, ValueError) as exc:
        raise build_error("concat", f"{exc} (shape {shape_str(values[0].shape)})") from None
    if len(values) == 1:
        return values[0]
    return Node.make("concat", values, axis=axis)


def expand_dims(x, axis: int) -> Node:
    (x,) = operands(x)
    axis = normalize_axis(axis, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x, axis=None) -> Node:
    """Drop size-1 axes (all of them when axis is None)."""
    (x,) = operands(x)
    if axis is None:
        axes = {k for k, d in enumerate(x.shape) if isinstance(d, int) and d == 1}
    else:
        axes = {normalize_axis(a, x.ndim) for a in (axis if isinstance(axis, tuple) else (axis,))}
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise build_error("squeeze", f"axis {bad[0]} of {shape_str(x.shape)} is not 1")
    return reshape(x, tuple(d for k, d in enumerate(x.shape) if k not in axes))


def slice_axis(x, axis: int, start, stop, step: int = 1) -> Node:
    """x[..., start:stop:step, ...] along one axis."""
    (x,) = operands(x)
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop, step)
    return getitem(x, tuple(index))


def getitem(x, index) -> Node:
    """Basic indexing: ints, slices (negative steps too), Ellipsis and None."""
    (x,) = operands(x)
    if not isinstance(index, tuple):
        index = (index,)
    for item in index:
        if not (item is None or item is Ellipsis or isinstance(item, slice)
                or isinstance(item, (int, np.integer)) and not isinstance(item, bool)):
            raise build_error("getitem", f"only basic indexing (ints, slices, ..., None) is "
                              f"supported, got {item!r}")
    if builtins.sum(item is Ellipsis for item in index) > 1:
        raise build_error("getitem", "an index can only have a single ellipsis")
    used = builtins.sum(item is not None and item is not Ellipsis for item in index)
    if used > x.ndim:
        raise build_error("getitem", f"too many indices ({used}) for shape {shape_str(x.shape)}")
    if Ellipsis in index:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (x.ndim - used) + index[k + 1:]
    else:
        index = index + (slice(None),) * (x.ndim - used)

    spec, out_shape, axis = [], [], 0
    for item in index:
        if item is None:
            out_shape.append(1)
            continue
        dim = x.shape[axis]
        if isinstance(item, slice):
            start, stop, step = normalize_slice(dim, item, axis)
            spec.append((start, stop, step))
            out_shape.append(len(range(start, stop, step)) if isinstance(dim, int) else dim)
        else:
            if not isinstance(dim, int):
                raise build_error("getitem", f"cannot take an int index on axis {axis} of "
                                  f"symbolic size {dim}")
            k = int(item)
            if not -dim <= k < dim:
                raise IndexError(f"getitem: index {k} is out of bounds for axis {axis} with "
                                 f"size {dim} (shape {shape_str(x.shape)})")
            k %= dim
            spec.append((k, k + 1, 1))
        axis += 1
    out = x
    whole = tuple((0, d, 1) if isinstance(d, int) else (None, None, 1) for d in x.shape)
    if tuple(spec) != whole:
        out = Node.make("slice", (x,), index=tuple(spec))
    return reshape(out, tuple(out_shape))



# ----- indexing and randomness --------------------------------------------------------------
def embedding(ids, table) -> Node:
    """table[ids] (PyTorch's argument order): rows of a (V, D) table for integer ids."""
    ids, table = operands(ids, table)
    return Node.make("take", (table, ids))


def one_hot(labels, n: int, dtype="float32") -> Node:
    """(..., n) with a 1 at each label; labels out of [0, n) raise at call time."""
    (labels,) = operands(labels)
    return Node.make("one_hot", (labels,), n=int(n), dtype=dtypes.as_dtype(dtype).name)


def random_uniform(shape, seed: int, dtype="float32") -> Node:
    """Uniform [0, 1) values drawn anew at each call (a function of seed, call count, index)."""
    return Node.make("random_uniform", (), shape=as_shape(shape), seed=seed,
                     dtype=dtypes.as_dtype(dtype).name)
