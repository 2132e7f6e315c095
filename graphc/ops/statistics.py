"""Reductions composed of primitive ops, so fusion, gradients and lowering come from those:
var and std (PyTorch's `correction`, default 1), logsumexp (stable, -inf rows give -inf),
vector norms (p = 1, 2, inf, -inf, 0 or any positive p, over any axes) and any/all.

Where PyTorch defines a gradient at a kink, so do these: std and every norm give 0 at an
all-zero input (a square root or 1/p-th power whose argument is 0 is taken through a
`where` whose other branch is safe, so no inf * 0 appears), an inf-norm shares the gradient
equally among the tied largest magnitudes."""

from __future__ import annotations

import math

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.arguments import pick, some_axes, values
from graphc.ops.elementwise import abs, cast, equal, exp, less, log, not_equal, pow, sqrt, where
from graphc.ops.leaf import dim_value
from graphc.ops.reduction import max, mean, min, reduced_shape, sum
from graphc.ops.shape import reshape, stop_gradient
from graphc.shapes import as_dim, size

__all__ = [  # the public builders (graphc/dsl.py)
    "var", "std", "logsumexp", "norm", "any", "all",
]


def _float(op: str, x) -> Node:
    """x as a float value (ints compute in float64, as NumPy's var and mean)."""
    (x,) = values(op, x)
    if x.dtype == dtypes.BOOL:
        raise build_error(op, "does not take bool inputs", dtype=True)
    return x if dtypes.is_float(x.dtype) else cast(x, dtypes.float_result(x.dtype))


def _axes(op: str, x: Node, axis, dim) -> tuple[int, ...]:
    return some_axes(op, pick(op, "axis", axis, "dim", dim), x)


def _keep(op: str, keepdims, keepdim) -> bool:
    return bool(pick(op, "keepdims", keepdims or None, "keepdim", keepdim, False))


def _finish(value: Node, x: Node, axes, keepdims: bool) -> Node:
    """A value reduced with keepdims=True, reshaped as the caller asked."""
    return value if keepdims else reshape(value, reduced_shape(x.shape, axes, False))


def _safe_root(s: Node, root) -> Node:
    """s ** (1/root) (root 2: sqrt) whose gradient is 0 where s is 0 (PyTorch's choice at
    the kink), not inf * 0."""
    zero = equal(s, 0.0)
    safe = where(zero, 1.0, s)
    value = sqrt(safe) if root == 2 else pow(safe, 1.0 / root)
    return where(zero, 0.0, value)


def var(x, axis=None, correction=None, keepdims: bool = False, *, dim=None, keepdim=None,
        ddof=None) -> Node:
    """Variance over axes: sum((x - mean)^2) / (N - correction), correction 1 by default
    (PyTorch; NumPy's ddof= is the same argument). N <= correction gives inf or NaN."""
    x = _float("var", x)
    axes = _axes("var", x, axis, dim)
    keep = _keep("var", keepdims, keepdim)
    correction = pick("var", "correction", correction, "ddof", ddof, 1)
    if not isinstance(correction, (int, float)) or isinstance(correction, bool):
        raise build_error("var", f"correction must be a number, got {correction!r}")
    centered = x - mean(x, axes, keepdims=True)
    total = sum(centered * centered, axes, keepdims=True)
    count = as_dim(size(tuple(x.shape[a] for a in axes)))
    if isinstance(count, int):
        (divisor,) = values("var", float(count - correction), reference=x.dtype)
    else:
        divisor = dim_value(count, x.dtype) - float(correction)
    return _finish(total / divisor, x, axes, keep)


def std(x, axis=None, correction=None, keepdims: bool = False, *, dim=None, keepdim=None,
        ddof=None) -> Node:
    """Standard deviation, sqrt(var) with var's arguments; its gradient is 0 where it is 0
    (PyTorch)."""
    return _safe_root(var(x, axis, correction, keepdims, dim=dim, keepdim=keepdim, ddof=ddof), 2)


def logsumexp(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Node:
    """log(sum(exp(x))) over axes, computed as m + log(sum(exp(x - m))) with m the max (0
    where the max is infinite: a row of -inf gives -inf, a +inf gives inf)."""
    x = _float("logsumexp", x)
    axes = _axes("logsumexp", x, axis, dim)
    peak = max(x, axes, keepdims=True)
    shift = stop_gradient(where(less(abs(peak), math.inf), peak, 0.0))
    total = log(sum(exp(x - shift), axes, keepdims=True)) + shift
    return _finish(total, x, axes, _keep("logsumexp", keepdims, keepdim))


def norm(x, p=2, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Node:
    """Vector norm over axes (all of them by default, as of the flattened input): p = 2
    (or "fro"), 1, inf (largest magnitude), -inf (smallest), 0 (count of nonzeros) or any
    positive number. Gradients as PyTorch's: 0 at an all-zero input, shared among ties of
    the inf-norms."""
    x = _float("norm", x)
    axes = _axes("norm", x, axis, dim)
    keep = _keep("norm", keepdims, keepdim)
    if p == "fro":
        p = 2
    if isinstance(p, bool) or not isinstance(p, (int, float)) or math.isnan(p) or (
            p < 0 and p != -math.inf):
        raise build_error("norm", f"p must be 'fro', inf, -inf, 0 or a positive number, got "
                          f"{p!r}")
    if p == math.inf:
        return max(abs(x), axes, keep)
    if p == -math.inf:
        return min(abs(x), axes, keep)
    if p == 0:
        return sum(cast(not_equal(x, 0.0), x.dtype), axes, keep)
    if p == 1:
        return sum(abs(x), axes, keep)
    if p == 2:
        total = sum(x * x, axes, keepdims=True)
    else:
        zero = equal(x, 0.0)
        powers = where(zero, 0.0, pow(where(zero, 1.0, abs(x)), float(p)))
        total = sum(powers, axes, keepdims=True)
    return _finish(_safe_root(total, p), x, axes, keep)


def any(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Node:  # noqa: A001
    """Whether any element over the axes is nonzero (bool); False over no elements."""
    (x,) = values("any", x)
    axes = _axes("any", x, axis, dim)
    hits = sum(cast(not_equal(x, 0), "int32"), axes, _keep("any", keepdims, keepdim))
    return not_equal(hits, 0)


def all(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Node:  # noqa: A001
    """Whether every element over the axes is nonzero (bool); True over no elements."""
    (x,) = values("all", x)
    axes = _axes("all", x, axis, dim)
    misses = sum(cast(equal(x, 0), "int32"), axes, _keep("all", keepdims, keepdim))
    return equal(misses, 0)
