"""Shapes whose dims are ints or sympy expressions of symbolic sizes such as N."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping

import sympy
from sympy.core.parameters import global_parameters

Dim = int | sympy.Expr
Shape = tuple[Dim, ...]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def symbol(name: str) -> sympy.Symbol:
    """The symbolic dim called `name` (one symbol per name, a nonnegative integer)."""
    return sympy.Symbol(name, integer=True, nonnegative=True)


def as_dim(dim) -> Dim:
    """Normalize one dim: ints stay ints, strings become symbols, constant exprs become ints."""
    if isinstance(dim, bool):
        raise TypeError(f"a dim must be an int or a name, got {dim!r}")
    if isinstance(dim, str):
        if not _IDENTIFIER.match(dim):
            raise ValueError(f"a symbolic dim must be an identifier, got {dim!r}")
        return symbol(dim)
    if isinstance(dim, sympy.Basic):
        dim = sympy.sympify(dim)
        if dim.is_Integer:
            return int(dim)
        if not dim.free_symbols:
            raise ValueError(f"dim {dim} is not an integer")
        return dim
    try:
        value = int(dim)
    except (TypeError, ValueError):
        raise TypeError(f"a dim must be an int or a name, got {dim!r}") from None
    if value != dim:
        raise TypeError(f"a dim must be an int or a name, got {dim!r}")
    if value < 0:
        raise ValueError(f"a dim must be nonnegative, got {value}")
    return value


def as_shape(shape) -> Shape:
    """Normalize a shape given as an int, a name, or a sequence of them."""
    if isinstance(shape, (int, str, sympy.Basic)):
        shape = (shape,)
    return tuple(as_dim(d) for d in shape)


def is_static(shape: Shape) -> bool:
    return all(isinstance(d, int) for d in shape)


def dims_equal(a: Dim, b: Dim) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if a == b:  # the same expression: its difference simplifies to 0
        return True
    if not global_parameters.evaluate:
        return _simplifies_to_zero(a, b)
    return _cached_simplifies_to_zero(a, b)


def _simplifies_to_zero(a: Dim, b: Dim) -> bool:
    return sympy.simplify(sympy.sympify(a) - sympy.sympify(b)) == 0


# Cached: sympy.simplify takes a millisecond, and graphs compare the same few symbolic
# dims thousands of times.
_cached_simplifies_to_zero = functools.lru_cache(maxsize=4096)(_simplifies_to_zero)


def size(shape: Shape) -> Dim:
    """Number of elements, an int or a sympy expression."""
    shape = tuple(shape)
    if all(isinstance(d, int) for d in shape):
        return math.prod(shape)
    if not global_parameters.evaluate:  # an unevaluated product: not one to cache
        return _symbolic_size(shape)
    return _cached_size(shape)


def _symbolic_size(shape: Shape) -> Dim:
    total: Dim = 1
    for d in shape:
        total = total * d
    return as_dim(total) if not isinstance(total, int) else total


# Cached: each sympy product takes tens of microseconds, and passes rebuild nodes of the
# same few symbolic shapes thousands of times (a reshape's inference takes two sizes).
_cached_size = functools.lru_cache(maxsize=4096)(_symbolic_size)


def broadcast(*shapes: Shape) -> Shape:
    """NumPy broadcasting of shapes; a symbolic dim only broadcasts against 1 or itself."""
    if shapes and all(s == shapes[0] for s in shapes[1:]):
        return tuple(shapes[0])  # the common case, elementwise ops over one shape
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dim: Dim = 1
        for s in shapes:
            k = axis - (ndim - len(s))
            if k < 0:
                continue
            d = s[k]
            if isinstance(d, int) and d == 1:
                continue
            if isinstance(dim, int) and dim == 1:
                dim = d
            elif not dims_equal(dim, d):
                listed = ", ".join(shape_str(s) for s in shapes)
                raise ValueError(f"shapes {listed} do not broadcast")
        out.append(dim)
    return tuple(out)


def normalize_axis(axis: int, ndim: int) -> int:
    if not isinstance(axis, (int,)) or isinstance(axis, bool):
        raise TypeError(f"axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for rank {ndim}")
    return axis % ndim


def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    """Axes as a sorted tuple of nonnegative ints; None means all axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, Iterable):
        axes = tuple(normalize_axis(a, ndim) for a in axis)
    else:
        axes = (normalize_axis(axis, ndim),)
    if len(set(axes)) != len(axes):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(axes))


def evaluate(shape: Shape, binding: Mapping[sympy.Symbol, int]) -> tuple[int, ...]:
    """Concrete shape under a binding of the symbolic dims."""
    return tuple(d if isinstance(d, int) else int(d.subs(binding)) for d in shape)


def evaluate_dim(dim: Dim, binding: Mapping[sympy.Symbol, int]) -> int:
    return dim if isinstance(dim, int) else int(dim.subs(binding))


def binding_key(binding: Mapping[sympy.Symbol, int]) -> tuple[tuple[str, int], ...]:
    """A binding as a hashable key, by the symbols' names (read as attributes: printing
    one through sympy cost a call of a small step ~10 us)."""
    return tuple(sorted((s.name if isinstance(s, sympy.Symbol) else str(s), v)
                        for s, v in binding.items()))


def shape_str(shape: Shape) -> str:
    """A shape as the user would write it: (N, 784)."""
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"
