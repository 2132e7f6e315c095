"""Python's operators on graph values: `+ - * / // % ** @`, unary `-` and `abs`,
comparisons, the bitwise `& | ^ ~ << >>` (logical on bools), indexing, and the NumPy-like
methods `.sum .mean .max .min .argmax .reshape .transpose .astype .T`. The IR's Node knows
no op; this module installs the builders on it."""

from __future__ import annotations

from graphc.ir.node import Node
from graphc.ops import bitwise, division, linalg, reduction, shape
from graphc.ops import elementwise as ew


def _reshape(self, *dims):
    return shape.reshape(self, dims[0] if len(dims) == 1 else dims)


def _transpose(self, *axes):
    return shape.transpose(self, axes[0] if len(axes) == 1 else (axes or None))


OPERATORS = {
    "__add__": lambda a, b: ew.add(a, b), "__radd__": lambda a, b: ew.add(b, a),
    "__sub__": lambda a, b: ew.sub(a, b), "__rsub__": lambda a, b: ew.sub(b, a),
    "__mul__": lambda a, b: ew.mul(a, b), "__rmul__": lambda a, b: ew.mul(b, a),
    "__truediv__": lambda a, b: ew.div(a, b), "__rtruediv__": lambda a, b: ew.div(b, a),
    "__pow__": lambda a, b: ew.pow(a, b), "__rpow__": lambda a, b: ew.pow(b, a),
    "__floordiv__": lambda a, b: division.floor_divide(a, b),
    "__rfloordiv__": lambda a, b: division.floor_divide(b, a),
    "__mod__": lambda a, b: division.remainder(a, b),
    "__rmod__": lambda a, b: division.remainder(b, a),
    "__and__": lambda a, b: bitwise.bitwise_and(a, b),
    "__rand__": lambda a, b: bitwise.bitwise_and(b, a),
    "__or__": lambda a, b: bitwise.bitwise_or(a, b),
    "__ror__": lambda a, b: bitwise.bitwise_or(b, a),
    "__xor__": lambda a, b: bitwise.bitwise_xor(a, b),
    "__rxor__": lambda a, b: bitwise.bitwise_xor(b, a),
    "__invert__": lambda a: bitwise.bitwise_not(a),
    "__lshift__": lambda a, b: bitwise.left_shift(a, b),
    "__rlshift__": lambda a, b: bitwise.left_shift(b, a),
    "__rshift__": lambda a, b: bitwise.right_shift(a, b),
    "__rrshift__": lambda a, b: bitwise.right_shift(b, a),
    "__matmul__": lambda a, b: linalg.matmul(a, b),
    "__rmatmul__": lambda a, b: linalg.matmul(b, a),
    "__neg__": lambda a: ew.neg(a), "__pos__": lambda a: a, "__abs__": lambda a: ew.abs(a),
    "__lt__": lambda a, b: ew.less(a, b), "__le__": lambda a, b: ew.less_equal(a, b),
    "__gt__": lambda a, b: ew.greater(a, b), "__ge__": lambda a, b: ew.greater_equal(a, b),
    "__getitem__": lambda a, index: shape.getitem(a, index),
    "sum": lambda a, axis=None, keepdims=False: reduction.sum(a, axis, keepdims),
    "mean": lambda a, axis=None, keepdims=False: reduction.mean(a, axis, keepdims),
    "max": lambda a, axis=None, keepdims=False: reduction.max(a, axis, keepdims),
    "min": lambda a, axis=None, keepdims=False: reduction.min(a, axis, keepdims),
    "argmax": lambda a, axis=None, keepdims=False: reduction.argmax(a, axis, keepdims),
    "reshape": _reshape,
    "transpose": _transpose,
    "astype": lambda a, dtype: ew.cast(a, dtype),
    "T": property(lambda a: shape.transpose(a)),
}


def install() -> None:
    """Put the operators and methods on Node (idempotent)."""
    for name, function in OPERATORS.items():
        type.__setattr__(Node, name, function)
