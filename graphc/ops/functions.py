"""More elementwise math, with NumPy's and PyTorch's semantics: log1p expm1 rsqrt
reciprocal square, the roundings floor ceil round trunc (ints unchanged; round halves to
even), the trigonometric and hyperbolic tan sinh cosh asin acos atan atan2, copysign, the
tests isnan isinf isfinite, logical_xor, and isclose (composed of the others).

Each is an elementwise op whose expression (graphc/ops/scalar.py) gives its gradient,
fusion and code; the roundings and tests have zero gradients (PyTorch's).
"""

from __future__ import annotations

import numbers

import numpy as np
import sympy

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops import scalar
from graphc.ops.elementwise import (
    abs,
    apply,
    cast,
    define,
    equal,
    less_equal,
    logical_and,
    logical_or,
    mul,
    sub,
    values,
)

__all__ = [  # the public builders (graphc/dsl.py)
    "log1p", "expm1", "rsqrt", "reciprocal", "square", "floor", "ceil", "round", "trunc",
    "tan", "sinh", "cosh", "asin", "acos", "atan", "atan2", "copysign", "isnan", "isinf",
    "isfinite", "logical_xor", "isclose",
]


def _as_number(condition):
    """A sympy boolean as the number 1 or 0 (bools are 0/1 numbers in expressions)."""
    return scalar.piecewise((sympy.S.One, condition), (sympy.S.Zero, True))


def _atan2_partials(y, x):
    """PyTorch's: d/dy = x / (x**2 + y**2), d/dx = -y / (x**2 + y**2), both 0 where the
    denominator is 0 (atan2(0, 0): sympy's are 0/0 there)."""
    r2 = x**2 + y**2
    at_origin = sympy.Eq(r2, 0)
    return [scalar.piecewise((sympy.S.Zero, at_origin), (x / r2, True)),
            scalar.piecewise((sympy.S.Zero, at_origin), (-y / r2, True))]


def _rsqrt(x):
    return sympy.Pow(x, -sympy.S.Half, evaluate=False)


# ----- float-valued functions (ints give float64) -------------------------------------------
define("log1p", 1, np.log1p, scalar.Log1p, "float")
define("expm1", 1, np.expm1, scalar.Expm1, "float")
define("rsqrt", 1, lambda x: 1 / np.sqrt(x), _rsqrt, "float",
       partials=lambda x: [sympy.Mul(-sympy.S.Half, sympy.Pow(_rsqrt(x), 3, evaluate=False),
                                     evaluate=False)])
define("reciprocal", 1, lambda x: 1 / x, lambda x: sympy.Pow(x, -1, evaluate=False), "float")
define("tan", 1, np.tan, sympy.tan, "float")
define("sinh", 1, np.sinh, sympy.sinh, "float")
define("cosh", 1, np.cosh, sympy.cosh, "float")
define("asin", 1, np.arcsin, sympy.asin, "float")
define("acos", 1, np.arccos, sympy.acos, "float")
define("atan", 1, np.arctan, sympy.atan, "float")
define("atan2", 2, np.arctan2, sympy.atan2, "float", partials=_atan2_partials)
define("copysign", 2, np.copysign, scalar.CopySign, "float")

# ----- dtype-keeping (ints unchanged) -----------------------------------------------------------
define("square", 1, np.square, lambda x: sympy.Pow(x, 2, evaluate=False), "same")
define("floor", 1, np.floor, scalar.Floor, "same")
define("ceil", 1, np.ceil, scalar.Ceil, "same")
define("round", 1, np.round, scalar.RoundEven, "same")
define("trunc", 1, np.trunc, scalar.Trunc, "same")

# ----- tests and logic (bool results, no gradient) ------------------------------------------------
define("isnan", 1, np.isnan, lambda x: scalar.IsNan(x), "compare", False)
define("isinf", 1, np.isinf, lambda x: scalar.IsInf(x), "compare", False)
define("isfinite", 1, np.isfinite, lambda x: scalar.IsFinite(x), "compare", False)
define("logical_xor", 2, np.logical_xor,
       lambda a, b: _as_number(sympy.Xor(sympy.Ne(a, 0), sympy.Ne(b, 0))), "logical", False)


def log1p(x) -> Node:
    """log(1 + x), accurate for small x."""
    return apply("log1p", x)


def expm1(x) -> Node:
    """exp(x) - 1, accurate for small x."""
    return apply("expm1", x)


def rsqrt(x) -> Node:
    """1 / sqrt(x); its gradient -rsqrt(x)**3 / 2, PyTorch's (+inf at -0.0)."""
    return apply("rsqrt", x)


def reciprocal(x) -> Node:
    """1 / x (ints give float64)."""
    return apply("reciprocal", x)


def square(x) -> Node:
    """x * x (ints stay ints)."""
    return apply("square", x)


def floor(x) -> Node:
    """The largest integer <= x, in x's dtype (ints unchanged); gradient 0."""
    return apply("floor", x)


def ceil(x) -> Node:
    """The smallest integer >= x, in x's dtype (ints unchanged); gradient 0."""
    return apply("ceil", x)


def trunc(x) -> Node:
    """x rounded toward 0, in x's dtype (ints unchanged); gradient 0."""
    return apply("trunc", x)


def round(x, decimals: int = 0) -> Node:  # noqa: A001 (NumPy's and PyTorch's name)
    """x rounded to `decimals` decimal places, halves to even (NumPy, PyTorch), in x's
    dtype; gradient 0. With decimals, as PyTorch: round(x * 10**d) / 10**d (d > 0), or
    round(x / 10**-d) * 10**-d (d < 0), for floats."""
    if not isinstance(decimals, numbers.Integral) or isinstance(decimals, bool):
        raise build_error("round", f"decimals must be an int, got {decimals!r}")
    if decimals == 0:
        return apply("round", x)
    (x,) = values("round", x)
    if not dtypes.is_float(x.dtype):
        raise build_error("round", f"decimals={decimals} needs a float input, got "
                          f"{x.dtype.name}", dtype=True)
    scale = 10.0 ** (decimals if decimals > 0 else -decimals)
    if decimals > 0:
        return apply("round", x * scale) / scale
    return apply("round", x / scale) * scale


def tan(x) -> Node:
    """tan(x)."""
    return apply("tan", x)


def sinh(x) -> Node:
    """sinh(x)."""
    return apply("sinh", x)


def cosh(x) -> Node:
    """cosh(x)."""
    return apply("cosh", x)


def asin(x) -> Node:
    """arcsin(x), NaN outside [-1, 1]."""
    return apply("asin", x)


def acos(x) -> Node:
    """arccos(x), NaN outside [-1, 1]."""
    return apply("acos", x)


def atan(x) -> Node:
    """arctan(x)."""
    return apply("atan", x)


def atan2(y, x) -> Node:
    """The angle of the point (x, y), in [-pi, pi] (C's atan2: PyTorch's atan2(input,
    other) and NumPy's arctan2 take y first). Gradient 0 at the origin (PyTorch)."""
    return apply("atan2", y, x)


def copysign(x, y) -> Node:
    """|x| with the sign of y (its sign bit: -0.0 counts as negative); floats."""
    return apply("copysign", x, y)


def isnan(x) -> Node:
    """Where x is NaN (bool; False for ints)."""
    return apply("isnan", x)


def isinf(x) -> Node:
    """Where x is +inf or -inf (bool)."""
    return apply("isinf", x)


def isfinite(x) -> Node:
    """Where x is neither NaN nor infinite (bool)."""
    return apply("isfinite", x)


def logical_xor(a, b) -> Node:
    """a xor b of bools."""
    return apply("logical_xor", a, b)


def isclose(a, b, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Node:
    """Where |a - b| <= atol + rtol * |b| (bool), as PyTorch's isclose: equal values
    (infinities of one sign too) are close, NaN is close to NaN only with equal_nan, and
    an infinity is close to nothing else. Ints are compared in float64."""
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not isinstance(tol, numbers.Real) or isinstance(tol, bool) or not tol >= 0:
            raise build_error("isclose", f"{name} must be a number >= 0, got {tol!r}")
    if not isinstance(equal_nan, bool):
        raise build_error("isclose", f"equal_nan must be a bool, got {equal_nan!r}")
    a, b = values("isclose", a, b)
    if dtypes.BOOL in (a.dtype, b.dtype):
        raise build_error("isclose", f"does not take bool inputs (got {a.dtype.name}, "
                          f"{b.dtype.name})", dtype=True)
    close = equal(a, b)
    if equal_nan:
        close = logical_or(close, logical_and(isnan(a), isnan(b)))
    if not (dtypes.is_float(a.dtype) or dtypes.is_float(b.dtype)):
        a, b = cast(a, "float64"), cast(b, "float64")
    error = abs(sub(a, b))
    allowed = abs(mul(b, float(rtol))) + float(atol)
    return logical_or(close, logical_and(isfinite(error), less_equal(error, allowed)))
