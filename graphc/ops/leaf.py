"""Leaves of the graph: inputs (bound at call time), params (own a value) and constants,
with their builders, and `operands`, which turns the mixed arguments of every builder into
graph values.

The dtype rule, PyTorch's: Python scalars and 0-d NumPy values (`np.float64(0.125)`, what
`1 / np.sqrt(64)` returns, or `np.array(2.0)`) are weak: they take the dtype of the values
they meet, so `x * (1 / np.sqrt(64))` stays float32. Arrays of one or more dims keep their
dtype and promote as NumPy does; a float64 constant that promotes a float32 value warns
once per source line (PromotionWarning), since that is rarely meant (20-35% slower, twice
the memory)."""

from __future__ import annotations

import itertools
import numbers
import warnings

import numpy as np

from graphc import dtypes
from graphc.errors import PromotionWarning, user_location, user_stacklevel
from graphc.ir.node import Node
from graphc.ir.op import Kind, Op, register_class
from graphc.shapes import as_shape, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "input", "param", "constant", "operands",
]

_param_ids = itertools.count()


def input(name: str, shape, dtype="float32") -> Node:  # noqa: A001 (the public API's name)
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


def is_weak(x) -> bool:
    """Whether x takes the dtype of the values it meets: a Python scalar, or a 0-d NumPy
    bool, int or float (a NumPy scalar such as np.float64(2.0), or a 0-d array)."""
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        return True
    return isinstance(x, (np.generic, np.ndarray)) and np.ndim(x) == 0 \
        and np.asarray(x).dtype.kind in "biuf"


def as_weak(x):
    """A weak value (see is_weak) as the Python scalar it stands for."""
    return x.item() if isinstance(x, (np.generic, np.ndarray)) else x


def operands(*xs, reference=None) -> tuple[Node, ...]:
    """Graph values for mixed operands; weak scalars (see is_weak) take the dtype of the
    others, or `reference`'s."""
    nodes = [x for x in xs if isinstance(x, Node)]
    if reference is None:
        reference = dtypes.promote(*(n.dtype for n in nodes)) if nodes else None
    out = []
    for x in xs:
        if isinstance(x, Node):
            out.append(x)
        elif reference is not None and is_weak(x):
            value = as_weak(x)
            out.append(constant(value, dtypes.weak_scalar_dtype(value, reference)))
        elif isinstance(x, (numbers.Number, np.ndarray, np.generic, list, tuple)):
            out.append(constant(x))
        else:
            raise TypeError(f"cannot use {type(x).__name__} {x!r} as a graph value")
    _check_promotion(out)
    return tuple(out)


_warned_lines: set[str] = set()  # the user's lines a PromotionWarning was given for


def _check_promotion(values: list[Node]) -> None:
    """Warn (once per user's line) when a float64 constant meets a float32 value that is
    not a constant: the result, and what is computed from it, becomes float64."""
    wide = next((v for v in values if v.op == "constant" and v.dtype == dtypes.FLOAT64), None)
    if wide is None or not any(v.op != "constant" and v.dtype == dtypes.FLOAT32
                               for v in values):
        return
    where = user_location()
    if where in _warned_lines:
        return
    _warned_lines.add(where)
    warnings.warn(
        f"a float64 constant of shape {shape_str(wide.shape)} promotes a float32 value to "
        f"float64 at {where}: NumPy arrays keep their dtype (Python scalars and 0-d NumPy "
        "values do not). Make it float32 (np.asarray(a, np.float32)), or cast the float32 "
        "value first (gc.cast(x, 'float64')) if float64 is meant",
        PromotionWarning, stacklevel=user_stacklevel())


def dim_value(dim, dtype) -> Node:
    """A scalar graph value of a (possibly symbolic) dim, e.g. the count a mean divides by."""
    if isinstance(dim, int):
        (node,) = operands(float(dim), reference=dtypes.as_dtype(dtype))
        return node
    return Node.make("dim_value", (), dim=dim, dtype=dtypes.as_dtype(dtype).name)


@register_class
class Input(Op):
    """A value given at each call; its shape may hold symbolic dims."""

    name = "input"
    kind = Kind.LEAF
    differentiable = False

    def infer(self, inputs, attrs):
        return dtypes.as_dtype(attrs["dtype"]), attrs["shape"]

    def numpy(self, node, args, env):
        return env.argument(node)


@register_class
class Param(Op):
    """A trainable value owned by the node; updates write into it in place."""

    name = "param"
    kind = Kind.LEAF
    differentiable = False

    def infer(self, inputs, attrs):
        return dtypes.as_dtype(attrs["dtype"]), attrs["shape"]

    def numpy(self, node, args, env):
        return node.value


@register_class
class Constant(Op):
    """A fixed array, hashed by its bytes, so equal constants are one node."""

    name = "constant"
    kind = Kind.LEAF
    differentiable = False

    def infer(self, inputs, attrs):
        array: np.ndarray = attrs["value"].array
        return dtypes.as_dtype(array.dtype), array.shape

    def numpy(self, node, args, env):
        return node.attrs["value"].array


@register_class
class DimValue(Op):
    """attrs: dim (an int or sympy expression of symbolic dims), dtype. A scalar holding the
    dim's value under the call's binding, e.g. the count a mean divides by."""

    name = "dim_value"
    kind = Kind.LEAF
    differentiable = False

    def infer(self, inputs, attrs):
        return dtypes.as_dtype(attrs["dtype"]), ()

    def numpy(self, node, args, env):
        (value,) = env.shape((node.attrs["dim"],))
        return np.asarray(value, dtype=node.dtype)
