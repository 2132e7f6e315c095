"""Python's operators on graph values: `+ - * / // % ** @`, unary `-` and `abs`,
comparisons, the bitwise `& | ^ ~ << >>` (logical on bools), indexing, the NumPy-like
methods `.sum .mean .prod .max .min .argmax .argmin .reshape .transpose .astype .T` and,
under PyTorch's names, `.var .std .any .all .cumsum .cumprod .flatten .permute .unsqueeze
.expand .flip .repeat`. The IR's Node knows no op; this module installs the builders on
it."""

from __future__ import annotations

from graphc.ir.node import Node
from graphc.ops import (
    bitwise,
    division,
    linalg,
    rearrange,
    reduction,
    scan,
    shape,
    statistics,
    subscript,
)
from graphc.ops import elementwise as ew


def _reshape(self, *dims):
    return shape.reshape(self, dims[0] if len(dims) == 1 else dims)


def _not_iterable(self):
    """Graph values are not sequences: without this, Python would iterate x[0], x[1], ...
    and `values, indices = gc.max(x, dim=1)` would silently unpack two rows."""
    raise TypeError("a graph value is not iterable: gc.unbind(x) gives its slices, and "
                    "max/min(..., return_indices=True), sort, topk, cummax and cummin give "
                    "(values, indices) pairs")


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
    "__getitem__": lambda a, index: subscript.getitem(a, index),
    "__iter__": _not_iterable,
    "sum": lambda a, axis=None, keepdims=False: reduction.sum(a, axis, keepdims),
    "mean": lambda a, axis=None, keepdims=False: reduction.mean(a, axis, keepdims),
    "max": lambda a, axis=None, keepdims=False: reduction.max(a, axis, keepdims),
    "min": lambda a, axis=None, keepdims=False: reduction.min(a, axis, keepdims),
    "argmax": lambda a, axis=None, keepdims=False: reduction.argmax(a, axis, keepdims),
    "prod": lambda a, axis=None, keepdims=False: reduction.prod(a, axis, keepdims),
    "argmin": lambda a, axis=None, keepdims=False: reduction.argmin(a, axis, keepdims),
    "var": lambda a, *args, **kw: statistics.var(a, *args, **kw),
    "std": lambda a, *args, **kw: statistics.std(a, *args, **kw),
    "any": lambda a, *args, **kw: statistics.any(a, *args, **kw),
    "all": lambda a, *args, **kw: statistics.all(a, *args, **kw),
    "cumsum": lambda a, *args, **kw: scan.cumsum(a, *args, **kw),
    "cumprod": lambda a, *args, **kw: scan.cumprod(a, *args, **kw),
    "flatten": lambda a, *args: rearrange.flatten(a, *args),
    "permute": lambda a, *dims: rearrange.permute(a, *dims),
    "unsqueeze": lambda a, dim: rearrange.unsqueeze(a, dim),
    "expand": lambda a, *sizes: rearrange.expand(a, *sizes),
    "flip": lambda a, *args, **kw: rearrange.flip(a, *args, **kw),
    "repeat": lambda a, *sizes: rearrange.repeat(a, *sizes),
    "reshape": _reshape,
    "transpose": _transpose,
    "astype": lambda a, dtype: ew.cast(a, dtype),
    "T": property(lambda a: shape.transpose(a)),
}


def install() -> None:
    """Put the operators and methods on Node (idempotent)."""
    for name, function in OPERATORS.items():
        type.__setattr__(Node, name, function)
