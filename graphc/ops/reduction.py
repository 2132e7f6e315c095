"""Reductions over axes (sum, mean, prod, max, min, argmax, argmin), NumPy's dtype rules,
with their builders and gradients (the incoming gradient broadcast back over the reduced
axes). Builders take NumPy's `axis=`/`keepdims=` or PyTorch's `dim=`/`keepdim=`.

Elementwise ops build on this module, so the gradients of max, min and prod build the
elementwise ops they need by name, and max/min with indices build their gather by name."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, get_op, register
from graphc.ir.provenance import members_of
from graphc.ops.arguments import pick
from graphc.ops.leaf import dim_value, operands
from graphc.ops.shape import broadcast_to, reshape
from graphc.shapes import as_dim, normalize_axes, shape_str, size

__all__ = [  # the public builders (graphc/dsl.py)
    "sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin",
]


def reduced_count(shape, axes) -> int:
    """How many elements each output element of a reduction over `axes` combines."""
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def user_origin(node) -> str:
    """Where the user built the reduction `node` computes: its own origin, or for a fused
    kernel the origin of the reduction it absorbed (the kernel was built by the optimizer)."""
    kind = node.attrs.get("kind", node.op)
    for member in reversed(members_of(node)):
        if member.op == kind:
            return member.origin
    return node.origin


def check_reducible(op: str, shape, axes, node) -> None:
    """Refuse a max/min/argmax over no elements: it has no identity (NumPy raises too), and
    a made-up value would be garbage; the error names where the user built `node`'s
    reduction. sum and mean of nothing are 0 and NaN."""
    if op in ("max", "min", "argmax", "argmin") and reduced_count(shape, axes) == 0:
        raise ValueError(f"{op}: zero-size reduction over axes {tuple(axes)} of an input of "
                         f"shape {shape_str(tuple(shape))} has no identity "
                         f"(at {user_origin(node)})")


def _mean(x, axis, keepdims):
    """np.mean, without its RuntimeWarning for a mean over no elements (NaN, as 0/0)."""
    if reduced_count(x.shape, range(x.ndim) if axis is None else axis) == 0:
        with np.errstate(all="ignore"):
            total = np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float64)
            return np.true_divide(total, 0)
    return np.mean(x, axis=axis, keepdims=keepdims)


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if k in axes else d for k, d in enumerate(shape))
    return tuple(d for k, d in enumerate(shape) if k not in axes)


class Reduction(Op):
    """attrs: axes (sorted tuple of nonnegative ints), keepdims (bool)."""

    pattern = Pattern.REDUCTION

    def __init__(self, name, reference, dtype_rule):
        self.name = name
        self.reference = reference
        self.dtype_rule = dtype_rule

    def normalize(self, x, axis, keepdims):
        try:
            axes = normalize_axes(axis, x.ndim)
        except (ValueError, TypeError) as exc:
            raise build_error(self.name, f"{exc} (input shape {shape_str(x.shape)})") from None
        return {"axes": axes, "keepdims": bool(keepdims)}

    def infer(self, inputs, attrs):
        (x,) = inputs
        if self.dtype_rule == "sum":
            dtype = x.dtype if dtypes.is_float(x.dtype) else dtypes.INT64
        elif self.dtype_rule == "mean":
            dtype = dtypes.float_result(x.dtype)
        else:
            dtype = x.dtype
        return dtype, reduced_shape(x.shape, attrs["axes"], attrs["keepdims"])

    def numpy(self, node, args, env):
        (x,) = args
        check_reducible(self.name, x.shape, node.attrs["axes"], node)
        with np.errstate(all="ignore"):
            out = self.reference(x, axis=node.attrs["axes"], keepdims=node.attrs["keepdims"])
        return np.asarray(out, dtype=node.dtype)

    def grad(self, node, out_grad):
        return reduction_grad(node, out_grad)


register(Reduction("sum", np.sum, "sum"))
register(Reduction("mean", _mean, "mean"))
register(Reduction("prod", np.prod, "sum"))
register(Reduction("max", np.max, "same"))
register(Reduction("min", np.min, "same"))


class ArgMax(Op):
    """Index of the first maximum (argmax) or minimum (argmin) along one axis, or of the
    flattened array; int64. A NaN counts as the extremum (NumPy, PyTorch)."""

    differentiable = False

    def __init__(self, name, reference):
        self.name = name
        self.reference = reference

    def normalize(self, x, axis, keepdims):
        if axis is not None:
            try:
                axis = normalize_axes(axis, x.ndim)
            except (ValueError, TypeError) as exc:
                raise build_error(self.name, f"{exc} (input shape {shape_str(x.shape)})") \
                    from None
            if len(axis) != 1:
                raise build_error(self.name, "takes one axis or None")
            axis = axis[0]
        return {"axis": axis, "keepdims": bool(keepdims)}

    def infer(self, inputs, attrs):
        (x,) = inputs
        axis = attrs["axis"]
        axes = tuple(range(x.ndim)) if axis is None else (axis,)
        return dtypes.INT64, reduced_shape(x.shape, axes, attrs["keepdims"])

    def numpy(self, node, args, env):
        (x,) = args
        axis, keepdims = node.attrs["axis"], node.attrs["keepdims"]
        axes = range(x.ndim) if axis is None else (axis,)
        check_reducible(self.name, x.shape, tuple(axes), node)
        out = self.reference(x, axis=axis, keepdims=keepdims)
        return np.asarray(out, dtype=np.int64)


register(ArgMax("argmax", np.argmax))
register(ArgMax("argmin", np.argmin))


# ----- gradients ----------------------------------------------------------------------------
def _expand(g: Node, x: Node, axes) -> Node:
    """g, with the reduced axes restored as size 1 and broadcast to x's shape."""
    kept = reshape(g, reduced_shape(x.shape, axes, keepdims=True))
    return broadcast_to(kept, x.shape)


def reduction_grad(node: Node, out_grad: Node) -> list[Node | None]:
    """The gradient of sum, mean, max or min (or of the reduction a fused kernel ends in)."""
    (x,) = node.inputs
    axes = node.attrs["axes"]
    g = _expand(out_grad, x, axes)
    if node.op == "sum":
        return [g]
    if node.op == "mean":
        count = as_dim(size(tuple(x.shape[a] for a in axes)))
        return [g / dim_value(count, x.dtype)]
    if node.op == "prod":
        return [g * _prod_of_others(x, axes)]
    # max / min: the gradient is shared equally among the positions that attain it.
    hit = Node.make("equal", (x, _expand(node, x, axes)))
    hit = Node.make("cast", (hit,), dtype=x.dtype.name)
    ties = _expand(sum(hit, axes), x, axes)
    return [g * hit / ties]


def _prod_of_others(x: Node, axes) -> Node:
    """For each element of x, the product of the other elements it is reduced with, exact
    where the row holds zeros (PyTorch's rule): with no zero it is prod / x, at a row's
    only zero the product of the rest, and 0 elsewhere."""
    is_zero = Node.make("equal", (x, operands(0, reference=x.dtype)[0]))
    one = operands(1, reference=x.dtype)[0]
    nonzero = Node.make("where", (is_zero, one, x))
    product = _expand(Node.make("prod", (nonzero,), axes=axes, keepdims=False), x, axes)
    zeros = sum(Node.make("cast", (is_zero,), dtype="int32"), axes)
    zeros = _expand(zeros, x, axes)
    none = Node.make("equal", (zeros, operands(0, reference=zeros.dtype)[0]))
    only = Node.make("logical_and", (is_zero, Node.make(
        "equal", (zeros, operands(1, reference=zeros.dtype)[0]))))
    keep = Node.make("logical_or", (none, only))
    return Node.make("where", (keep, product / nonzero, operands(0, reference=x.dtype)[0]))


# ----- builders -----------------------------------------------------------------------------
def _reduce(op: str, x, axis, keepdims, dim=None, keepdim=None) -> Node:
    (x,) = operands(x)
    axis = pick(op, "axis", axis, "dim", dim)
    keepdims = pick(op, "keepdims", keepdims or None, "keepdim", keepdim, False)
    return Node.make(op, (x,), **get_op(op).normalize(x, axis, keepdims))


def sum(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Node:  # noqa: A001
    return _reduce("sum", x, axis, keepdims, dim, keepdim)


def mean(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Node:
    return _reduce("mean", x, axis, keepdims, dim, keepdim)


def prod(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Node:
    """Product over axes (ints in int64, as NumPy); the gradient is exact where a row holds
    zeros (PyTorch's rule), not prod / x."""
    return _reduce("prod", x, axis, keepdims, dim, keepdim)


class MaxResult(NamedTuple):
    """What max/min with return_indices=True give (PyTorch's torch.return_types.max)."""

    values: Node
    indices: Node


def _extremum(op: str, x, axis, keepdims, dim, keepdim, return_indices) -> Node | MaxResult:
    if not return_indices:
        return _reduce(op, x, axis, keepdims, dim, keepdim)
    (x,) = operands(x)
    axis = pick(op, "axis", axis, "dim", dim)
    if axis is None or isinstance(axis, (tuple, list)):
        raise build_error(op, f"return_indices=True needs one axis (dim=), got {axis!r}")
    keep = pick(op, "keepdims", keepdims or None, "keepdim", keepdim, False)
    indices = _reduce("argmax" if op == "max" else "argmin", x, axis, True)
    values = Node.make("gather", (x, indices), axis=indices.attrs["axis"])
    if not keep:
        shape = reduced_shape(x.shape, (indices.attrs["axis"],), False)
        values, indices = reshape(values, shape), reshape(indices, shape)
    return MaxResult(values, indices)


def max(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None,  # noqa: A001
        return_indices: bool = False) -> Node | MaxResult:
    """Largest value over axes; the gradient is shared equally among tied maxima (as
    torch.amax and full-tensor torch.max). With return_indices=True and one axis:
    (values, indices) as torch.max(x, dim): the index of the first maximum, and the
    values' gradient goes to that index alone."""
    return _extremum("max", x, axis, keepdims, dim, keepdim, return_indices)


def min(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None,  # noqa: A001
        return_indices: bool = False) -> Node | MaxResult:
    """Smallest value over axes; return_indices as in max."""
    return _extremum("min", x, axis, keepdims, dim, keepdim, return_indices)


def amax(x, dim=None, keepdim: bool = False) -> Node:
    """torch.amax: max's values, the gradient shared equally among ties."""
    return _reduce("max", x, None, False, dim, keepdim or None)


def amin(x, dim=None, keepdim: bool = False) -> Node:
    """torch.amin: min's values, the gradient shared equally among ties."""
    return _reduce("min", x, None, False, dim, keepdim or None)


def argmax(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Node:
    """Index of the first maximum (int64); of the flattened value when axis is None."""
    return _reduce("argmax", x, axis, keepdims, dim, keepdim)


def argmin(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Node:
    """Index of the first minimum (int64); of the flattened value when axis is None."""
    return _reduce("argmin", x, axis, keepdims, dim, keepdim)
