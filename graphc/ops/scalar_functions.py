"""The functions of the scalar-expression language that sympy lacks (graphc/ops/scalar.py
holds the language): each a sympy Function whose derivative (`fdiff`) is graphc's
convention, PyTorch's where the math leaves a choice (at kinks, at 0, at ties).

Three kinds:
- numeric functions (Sigmoid, Log1p, Floor, CopySign, ...): a number of numbers;
- indicators (IsNan, IsInf, IsFinite): bool-valued, a bool being the number 0 or 1;
- typed functions (FloorDivide, BitwiseAnd, LeftShift, ...): computed in the dtype named
  on their class (`FloorDivide_int32`), whatever dtype the kernel around them computes
  in: integer division by 0 or a shift is exact only in its own integer type, and a kernel
  that mixes an int op with floats computes in floats. `typed(FloorDivide, "int32")` is
  that class; every dtype's class exists at import, under its name in this module.
"""

from __future__ import annotations

import sympy
from sympy import Function, Piecewise, S
from sympy.functions.elementary.piecewise import ExprCondPair

from graphc import dtypes


def piecewise(*pieces) -> Piecewise:
    """Piecewise((value, condition), ...) built without any evaluation.

    sympy's constructor rewrites a condition that contains a Piecewise (as fused bodies
    produce: a comparison of a max or a where) into ITE form through set algebra and
    `simplify`, which is slow and can recurse without end; the bodies must keep the exact
    structure of the ops anyway."""
    pairs = [sympy.Basic.__new__(ExprCondPair, sympy.sympify(value), sympy.sympify(condition))
             for value, condition in pieces]
    return sympy.Basic.__new__(Piecewise, *pairs)


# ----- numeric functions --------------------------------------------------------------------
class Sigmoid(Function):
    """1 / (1 + exp(-x)), evaluated in its stable form by every backend."""

    def fdiff(self, argindex=1):
        s = Sigmoid(self.args[0])
        return s * (1 - s)


class Relu(Function):
    """max(x, 0) with NaN propagated; relu'(0) = 0."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        return piecewise((S.One, x > 0), (S.Zero, True))


class Sign(Function):
    """-1, 0 or 1; its derivative is 0 everywhere (by convention at 0)."""

    def fdiff(self, argindex=1):
        return S.Zero


class AbsF(Function):
    """|x|; abs'(0) = sign(0) = 0."""

    def fdiff(self, argindex=1):
        return Sign(self.args[0])


_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)


class Gelu(Function):
    """x * Phi(x), the exact (erf) GELU."""

    def fdiff(self, argindex=1):
        """Phi(x) + x phi(x), the normal density's 1/sqrt(2 pi) a factor: as the divisor
        sympy makes of it, every vector of a GELU gradient paid a division."""
        x = self.args[0]
        cdf = (1 + sympy.erf(x * sympy.Float(_SQRT_HALF))) / 2
        pdf = sympy.exp(-x**2 / 2) * sympy.Float(_INV_SQRT_2PI)
        return cdf + x * pdf


class GeluTanh(Function):
    """GELU's tanh approximation: x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        c = sympy.sqrt(2 / sympy.pi)
        t = sympy.tanh(c * (x + sympy.Float(0.044715) * x**3))
        return (1 + t) / 2 + x / 2 * (1 - t**2) * c * (1 + 3 * sympy.Float(0.044715) * x**2)


def _tie_split(a, b):
    return piecewise((S.One, a > b), (S.Half, sympy.Eq(a, b)), (S.Zero, True))


class Maximum(Function):
    """max(a, b) with NaN propagated; on ties the gradient is split in halves (as PyTorch)."""

    def fdiff(self, argindex=1):
        a, b = self.args
        return _tie_split(a, b) if argindex == 1 else _tie_split(b, a)


class Minimum(Function):
    """min(a, b) with NaN propagated; on ties the gradient is split in halves (as PyTorch)."""

    def fdiff(self, argindex=1):
        a, b = self.args
        return _tie_split(b, a) if argindex == 1 else _tie_split(a, b)


class Log1p(Function):
    """log(1 + x), accurate for x near 0 (where 1 + x rounds x away)."""

    def fdiff(self, argindex=1):
        return 1 / (1 + self.args[0])


class Expm1(Function):
    """exp(x) - 1, accurate for x near 0. Its derivative is exp(x) (PyTorch's expm1 has
    result + 1, which is 0 below x = -37: elu's and celu's are exp(x) there)."""

    def fdiff(self, argindex=1):
        return sympy.exp(self.args[0])


class _StepFunction(Function):
    """A step function: its derivative is 0 wherever it exists, and 0 by convention at
    the steps (PyTorch's floor, ceil, round and trunc have zero gradients)."""

    def fdiff(self, argindex=1):
        return S.Zero


class Floor(_StepFunction):
    """The largest integer <= x (ints unchanged)."""


class Ceil(_StepFunction):
    """The smallest integer >= x (ints unchanged)."""


class RoundEven(_StepFunction):
    """x rounded to the nearest integer, halves to even (NumPy's and PyTorch's round)."""


class Trunc(_StepFunction):
    """x rounded toward zero."""


class CopySign(Function):
    """|x| with the sign (bit) of y. d/dx = sign(x) * copysign(1, y), 0 at x = 0 (PyTorch:
    result / x, 0 where x == 0); d/dy = 0."""

    def fdiff(self, argindex=1):
        x, y = self.args
        return Sign(x) * CopySign(S.One, y) if argindex == 1 else S.Zero


# ----- indicators -----------------------------------------------------------------------------
class _Indicator(_StepFunction):
    """A truth of one number as the number 1 or 0 (a bool, as comparisons give). Not a
    sympy boolean: sympy rewrites a boolean whose argument holds a Piecewise (a fused
    relu, a where) into ITE form, outside the language."""


class IsNan(_Indicator):
    """1 where x is NaN."""


class IsInf(_Indicator):
    """1 where x is +inf or -inf."""


class IsFinite(_Indicator):
    """1 where x is neither NaN nor infinite."""


# ----- typed functions ------------------------------------------------------------------------
class TypedFunction(Function):
    """A function computed in the dtype on its class (see the module docstring): every
    interpreter converts the operands to `dtype`, computes, and converts back. The base
    classes have dtype None and are never in an expression."""

    dtype = None

    def fdiff(self, argindex=1):
        return S.Zero


class FloorDivide(TypedFunction):
    """a // b with Python's (NumPy's) rules: rounds toward -inf; an integer division by 0
    gives 0 (NumPy's value; PyTorch raises), a float one a / b (inf or NaN). Its gradient
    is 0 (PyTorch's for div with a rounding mode)."""


class TruncDivide(TypedFunction):
    """a / b rounded toward 0 (C's integer division; trunc(a / b) for floats); an integer
    division by 0 gives 0. Its gradient is 0."""


class Remainder(TypedFunction):
    """a % b with Python's sign rule (the result has b's sign; NumPy's remainder,
    PyTorch's remainder); an integer b = 0 gives 0, a float one NaN. d/da = 1,
    d/db = -(a // b) (PyTorch)."""

    def fdiff(self, argindex=1):
        if argindex == 1:
            return S.One
        a, b = self.args
        return -typed(FloorDivide, type(self).dtype)(a, b)


class _Integral(TypedFunction):
    """A typed function of ints only (bitwise ops, shifts)."""


class BitwiseAnd(_Integral):
    """a & b of ints (bools are 0 and 1)."""


class BitwiseOr(_Integral):
    """a | b of ints."""


class BitwiseXor(_Integral):
    """a ^ b of ints."""


class BitwiseNot(_Integral):
    """~a of an int: -a - 1 (255 - a for uint8)."""


class LeftShift(_Integral):
    """a << b; 0 where b is negative or at least the width (NumPy, PyTorch)."""


class RightShift(_Integral):
    """a >> b (arithmetic for signed types); where b is negative or at least the width,
    -1 for a negative a and 0 otherwise (NumPy, PyTorch)."""


TYPED_BASES = (FloorDivide, TruncDivide, Remainder, BitwiseAnd, BitwiseOr, BitwiseXor,
               BitwiseNot, LeftShift, RightShift)
_TYPED: dict[tuple[type, str], type] = {}


def typed(base: type, dtype) -> type:
    """The class of `base` computed in `dtype` (created at import for every dtype)."""
    return _TYPED[base, dtypes.as_dtype(dtype).name]


def typed_classes() -> dict[type, type]:
    """Every typed class -> its base."""
    return {cls: base for (base, _), cls in _TYPED.items()}


def _make_typed_classes() -> None:
    for base in TYPED_BASES:
        kinds = dtypes.INTS if issubclass(base, _Integral) else dtypes.INTS + dtypes.FLOATS
        for dtype in kinds:
            name = f"{base.__name__}_{dtype.name}"
            cls = type(base)(name, (base,), {"dtype": dtype, "__module__": __name__,
                                               "__doc__": f"{base.__name__} in {dtype.name}."})
            _TYPED[base, dtype.name] = cls
            globals()[name] = cls


_make_typed_classes()
