"""Argument handling shared by the builders of reductions, scans, sorts, gathers and shape
ops: PyTorch's spellings (`dim=`, `keepdim=`) next to graphc's (`axis=`, `keepdims=`),
axes checked against a rank, and graph values made from the user's arguments, every
failure a build error naming the op and the user's line."""

from __future__ import annotations

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.leaf import operands
from graphc.shapes import normalize_axes, normalize_axis, shape_str


def pick(op: str, name: str, value, alias: str, alias_value, default=None):
    """The value of an argument a user may spell two ways (`axis` or `dim`): either, not
    both; `default` when neither is given (None counts as not given)."""
    if value is not None and alias_value is not None:
        raise build_error(op, f"give {name}= or {alias}=, not both")
    if value is not None:
        return value
    return default if alias_value is None else alias_value


def inner_text(exc: Exception) -> str:
    """The text of a build error without its op's name and the user's line."""
    text = str(exc).rsplit(" (at ", 1)[0]
    head, sep, rest = text.partition(": ")
    return rest if sep and head.isidentifier() else text


def reworded(op: str, exc: Exception) -> Exception:
    """A build error of an op a builder composes, reworded as the builder's own (the
    builder's name, and the user's line once)."""
    return build_error(op, inner_text(exc), dtype=isinstance(exc, TypeError))


def values(op: str, *xs, reference=None) -> tuple[Node, ...]:
    """Graph values of the arguments (as leaf.operands), a bad one named by the op."""
    try:
        return operands(*xs, reference=reference)
    except (TypeError, ValueError) as exc:
        raise build_error(op, str(exc), dtype=isinstance(exc, TypeError)) from None


def one_axis(op: str, axis, x: Node, what: str = "axis") -> int:
    """A single axis of x, nonnegative."""
    try:
        return normalize_axis(axis, x.ndim)
    except (TypeError, ValueError) as exc:
        raise build_error(op, f"{what}: {exc} (input shape {shape_str(x.shape)})") from None


def new_axis(op: str, axis, x: Node) -> int:
    """The position of an axis inserted into x (-1: after the last), nonnegative."""
    try:
        return normalize_axis(axis, x.ndim + 1)
    except (TypeError, ValueError) as exc:
        raise build_error(op, f"dim: {exc} (a new axis of {shape_str(x.shape)})") from None


def some_axes(op: str, axis, x: Node) -> tuple[int, ...]:
    """Sorted distinct nonnegative axes of x (None: all of them)."""
    try:
        return normalize_axes(axis, x.ndim)
    except (TypeError, ValueError) as exc:
        raise build_error(op, f"{exc} (input shape {shape_str(x.shape)})") from None


def static_dim(op: str, x: Node, axis: int, why: str) -> int:
    """x's size along an axis, which must be a number (not a symbolic dim) because `why`."""
    dim = x.shape[axis]
    if not isinstance(dim, int):
        raise build_error(op, f"axis {axis} of {shape_str(x.shape)} has symbolic size {dim}, "
                          f"but {why}")
    return dim


def require_float(op: str, x: Node, what: str = "input") -> None:
    if not dtypes.is_float(x.dtype):
        raise build_error(op, f"{what} must be float32 or float64, got {x.dtype.name}",
                          dtype=True)


def require_int(op: str, x: Node, what: str = "index") -> None:
    if not dtypes.is_int(x.dtype):
        raise build_error(op, f"{what} must be int32 or int64, got {x.dtype.name}",
                          dtype=True)


def int_argument(op: str, name: str, value, minimum: int | None = None) -> int:
    """An int argument (a Python or NumPy int, not a bool), at least `minimum`."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise build_error(op, f"{name} must be an int, got {value!r}")
    value = int(value.__index__())
    if minimum is not None and value < minimum:
        raise build_error(op, f"{name} must be at least {minimum}, got {value}")
    return value


def int_sequence(op: str, name: str, value, minimum: int | None = None) -> tuple[int, ...]:
    """A tuple of ints from an int, a list or a tuple."""
    items = value if isinstance(value, (list, tuple)) else (value,)
    return tuple(int_argument(op, name, v, minimum) for v in items)
