"""Sympy functions of one scalar for the elementwise ops whose derivative conventions
sympy's built-ins do not give (relu'(0) = 0, sign' = 0, stable sigmoid, exact GELU).

Every elementwise op's scalar expression is built from these and sympy's exp, log, tanh,
erf, sin, cos, Pow, Add, Mul and Piecewise, so derivatives come from `sympy.diff` and the
same expressions can be converted back to graph or emitted by a backend.
"""

from __future__ import annotations

import sympy
from sympy import Function, Piecewise, S
from sympy.functions.elementary.piecewise import ExprCondPair


def piecewise(*pieces) -> Piecewise:
    """Piecewise((value, condition), ...) built without any evaluation.

    sympy's constructor rewrites a condition that contains a Piecewise (as fused bodies
    produce: a comparison of a max or a where) into ITE form through set algebra and
    `simplify`, which is slow and can recurse without end; the bodies must keep the exact
    structure of the ops anyway."""
    pairs = [sympy.Basic.__new__(ExprCondPair, sympy.sympify(value), sympy.sympify(condition))
             for value, condition in pieces]
    return sympy.Basic.__new__(Piecewise, *pairs)


class Sigmoid(Function):
    """1 / (1 + exp(-x)), evaluated in its stable form by every backend."""

    op_name = "sigmoid"

    def fdiff(self, argindex=1):
        s = Sigmoid(self.args[0])
        return s * (1 - s)


class Relu(Function):
    """max(x, 0) with NaN propagated; relu'(0) = 0."""

    op_name = "relu"

    def fdiff(self, argindex=1):
        x = self.args[0]
        return piecewise((S.One, x > 0), (S.Zero, True))


class Sign(Function):
    """-1, 0 or 1; its derivative is 0 everywhere (by convention at 0)."""

    op_name = "sign"

    def fdiff(self, argindex=1):
        return S.Zero


class AbsF(Function):
    """|x|; abs'(0) = sign(0) = 0."""

    op_name = "abs"

    def fdiff(self, argindex=1):
        return Sign(self.args[0])


class Gelu(Function):
    """x * Phi(x), the exact (erf) GELU."""

    op_name = "gelu"

    def fdiff(self, argindex=1):
        x = self.args[0]
        cdf = (1 + sympy.erf(x / sympy.sqrt(2))) / 2
        pdf = sympy.exp(-x**2 / 2) / sympy.sqrt(2 * sympy.pi)
        return cdf + x * pdf


class GeluTanh(Function):
    """GELU's tanh approximation: x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""

    op_name = "gelu_tanh"

    def fdiff(self, argindex=1):
        x = self.args[0]
        c = sympy.sqrt(2 / sympy.pi)
        t = sympy.tanh(c * (x + sympy.Float(0.044715) * x**3))
        return (1 + t) / 2 + x / 2 * (1 - t**2) * c * (1 + 3 * sympy.Float(0.044715) * x**2)


def _tie_split(a, b):
    return piecewise((S.One, a > b), (S.Half, sympy.Eq(a, b)), (S.Zero, True))


class Maximum(Function):
    """max(a, b) with NaN propagated; on ties the gradient is split in halves (as PyTorch)."""

    op_name = "maximum"

    def fdiff(self, argindex=1):
        a, b = self.args
        return _tie_split(a, b) if argindex == 1 else _tie_split(b, a)


class Minimum(Function):
    """min(a, b) with NaN propagated; on ties the gradient is split in halves (as PyTorch)."""

    op_name = "minimum"

    def fdiff(self, argindex=1):
        a, b = self.args
        return _tie_split(b, a) if argindex == 1 else _tie_split(a, b)


CUSTOM_FUNCTIONS = (Sigmoid, Relu, Sign, AbsF, Gelu, GeluTanh, Maximum, Minimum)
