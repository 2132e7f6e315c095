"""Leaves of the graph: inputs (bound at call time), params (own a value) and constants,
with their builders, and `operands`, which turns the mixed arguments of every builder into
graph values (Python scalars are weak: they take the dtype of the values they meet)."""

from __future__ import annotations

import itertools
import numbers

import numpy as np

from graphc import dtypes
from graphc.ir.node import Node
from graphc.ir.op import Kind, Op, register_class
from graphc.shapes import as_shape

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
    """Whether x is a Python scalar, which takes the dtype of the values it meets."""
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
        elif is_weak(x) and reference is not None:
            out.append(constant(x, dtypes.weak_scalar_dtype(x, reference)))
        elif isinstance(x, (numbers.Number, np.ndarray, np.generic, list, tuple)):
            out.append(constant(x))
        else:
            raise TypeError(f"cannot use {type(x).__name__} {x!r} as a graph value")
    return tuple(out)


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
