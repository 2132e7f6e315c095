"""Activation functions as PyTorch defines them (torch.nn.functional: argument names,
defaults, and the gradient at each kink): softplus elu selu celu mish hardswish
hardsigmoid hardtanh relu6 log_sigmoid softsign. Each is an elementwise op whose
expression (graphc/ops/scalar.py) gives its gradient, fusion and code; where sympy's
derivative of the expression would overflow or differ from PyTorch's, the op declares
its own (softplus, mish, log_sigmoid: sigmoids, which do not overflow).
"""

from __future__ import annotations

import numbers

import numpy as np
import sympy

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops import elementwise, scalar
from graphc.ops.elementwise import apply
from graphc.ops.leaf import as_weak, is_weak

__all__ = [  # the public builders (graphc/dsl.py)
    "softplus", "elu", "selu", "celu", "mish", "hardswish", "hardsigmoid", "hardtanh",
    "relu6", "log_sigmoid", "logsigmoid", "softsign",
]

# SELU's constants (Klambauer et al.), as PyTorch has them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _unevaluated(build):
    """An expression builder that builds without sympy's evaluation: sympy would rewrite
    (x + 3) / 6 as x/6 + 1/2, which cancels near x = -3 where PyTorch's (x + 3) / 6 does
    not."""
    def built(*args, **attrs):
        with sympy.evaluate(False):
            return build(*args, **attrs)
    return built


def define(name, arity, reference, sym, dtype_rule, differentiable=True, partials=None):
    """elementwise.define with the expression and the partials built unevaluated."""
    return elementwise.define(name, arity, reference, _unevaluated(sym), dtype_rule,
                              differentiable, partials and _unevaluated(partials))


def _number(value) -> sympy.Number:
    """An attribute as a sympy number: an int stays an Integer (exact for int inputs)."""
    return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)


def _stable_softplus(z):
    """log(1 + exp(z)) without overflow."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


# ----- softplus, mish, log_sigmoid: log(1 + exp) and its sigmoid derivative ----------------------
def _softplus(x, beta, threshold):
    z = x * beta
    return np.where(z > threshold, x, np.log1p(np.exp(z)) / beta)


def _scaled(x, beta):
    return x if beta == 1 else _number(beta) * x


def _softplus_sym(x, beta, threshold):
    z = _scaled(x, beta)
    soft = scalar.Log1p(sympy.exp(z))
    return scalar.piecewise((x, z > _number(threshold)),
                            (soft if beta == 1 else soft / _number(beta), True))


def _softplus_partials(x, beta, threshold):
    z = _scaled(x, beta)
    return [scalar.piecewise((sympy.S.One, z > _number(threshold)), (scalar.Sigmoid(z), True))]


define("softplus", 1, _softplus, _softplus_sym, "float", partials=_softplus_partials)


def _mish_partials(x):
    t = sympy.tanh(scalar.Log1p(sympy.exp(x)))
    return [t + x * scalar.Sigmoid(x) * (1 - t**2)]


define("mish", 1, lambda x: x * np.tanh(np.log1p(np.exp(x))),
       lambda x: x * sympy.tanh(scalar.Log1p(sympy.exp(x))), "float", partials=_mish_partials)
define("log_sigmoid", 1, lambda x: -_stable_softplus(-x),
       lambda x: scalar.Minimum(x, 0) - scalar.Log1p(sympy.exp(-scalar.AbsF(x))), "float",
       partials=lambda x: [scalar.Sigmoid(-x)])

# ----- the exponential linear units: x above 0, alpha * (exp(x) - 1) at and below -------------
define("elu", 1, lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(x)),
       lambda x, alpha: scalar.piecewise((x, x > 0), (_number(alpha) * scalar.Expm1(x), True)),
       "float")
define("selu", 1, lambda x: np.where(x > 0, SELU_SCALE * x,
                                     SELU_ALPHA * SELU_SCALE * np.expm1(x)),
       lambda x: scalar.piecewise((sympy.Float(SELU_SCALE) * x, x > 0),
                                  (sympy.Float(SELU_ALPHA * SELU_SCALE) * scalar.Expm1(x),
                                   True)), "float")
define("celu", 1, lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(x * (1 / alpha))),
       lambda x, alpha: scalar.piecewise(
           (x, x > 0), (_number(alpha) * scalar.Expm1(sympy.Float(1 / alpha) * x), True)),
       "float")

# ----- the piecewise-linear ones --------------------------------------------------------------
define("hardswish", 1, lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6,
       lambda x: x * scalar.Minimum(scalar.Maximum(x + 3, 0), 6) / 6, "float",
       partials=lambda x: [scalar.piecewise((sympy.S.Zero, x <= -3), (sympy.S.One, x >= 3),
                                            (x / 3 + sympy.S.Half, True))])
define("hardsigmoid", 1,
       lambda x: np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, (x + 3) / 6)),
       lambda x: scalar.piecewise((sympy.S.Zero, x <= -3), (sympy.S.One, x >= 3),
                                  ((x + 3) / 6, True)), "float")
define("hardtanh", 1,
       lambda x, min_val, max_val: np.where(x <= min_val, min_val,
                                            np.where(x >= max_val, max_val, x)),
       lambda x, min_val, max_val: scalar.piecewise(
           (_number(min_val), x <= min_val), (_number(max_val), x >= max_val), (x, True)),
       "same")
define("softsign", 1, lambda x: x / (1 + np.abs(x)), lambda x: x / (1 + scalar.AbsF(x)),
       "float")


# ----- builders -----------------------------------------------------------------------------
def _real(op: str, name: str, value, nonzero: bool = False):
    """A number argument, checked: a Python or 0-d NumPy number (not a bool), finite
    unless it is a threshold, and not 0 where it divides."""
    if isinstance(value, bool) or not is_weak(value) or not isinstance(as_weak(value),
                                                                      numbers.Real):
        raise build_error(op, f"{name} must be a number, got {value!r}")
    value = as_weak(value)
    if np.isnan(value) or (nonzero and value == 0):
        raise build_error(op, f"{name} must be {'a nonzero number' if nonzero else 'a number'}"
                          f", got {value!r}")
    return value


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Node:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (PyTorch's
    softplus; its gradient there is 1, elsewhere sigmoid(beta * x))."""
    beta = float(_real("softplus", "beta", beta, nonzero=True))
    threshold = float(_real("softplus", "threshold", threshold))
    return apply("softplus", x, beta=beta, threshold=threshold)


def elu(x, alpha: float = 1.0) -> Node:
    """x where x > 0, else alpha * (exp(x) - 1); the gradient at 0 is alpha (PyTorch)."""
    return apply("elu", x, alpha=float(_real("elu", "alpha", alpha)))


def selu(x) -> Node:
    """scale * elu(x, alpha) with SELU's constants (PyTorch's selu)."""
    return apply("selu", x)


def celu(x, alpha: float = 1.0) -> Node:
    """x where x > 0, else alpha * (exp(x / alpha) - 1); the gradient at 0 is 1."""
    return apply("celu", x, alpha=float(_real("celu", "alpha", alpha, nonzero=True)))


def mish(x) -> Node:
    """x * tanh(softplus(x))."""
    return apply("mish", x)


def hardswish(x) -> Node:
    """x * relu6(x + 3) / 6 (so -inf gives NaN, as PyTorch); the gradient is 0 up to -3,
    x / 3 + 1/2 between, 1 from 3 on (PyTorch's, at -3 and 3 too)."""
    return apply("hardswish", x)


def hardsigmoid(x) -> Node:
    """relu6(x + 3) / 6; the gradient is 0 at -3 and at 3 (PyTorch)."""
    return apply("hardsigmoid", x)


def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0) -> Node:
    """x limited to [min_val, max_val]; the gradient is 1 strictly inside, 0 at the bounds
    (PyTorch; gc.clip's is 1 at the bounds). Keeps x's dtype."""
    min_val = _real("hardtanh", "min_val", min_val)
    max_val = _real("hardtanh", "max_val", max_val)
    if min_val > max_val:
        raise build_error("hardtanh", f"min_val {min_val} is greater than max_val {max_val}")
    return apply("hardtanh", x, min_val=min_val, max_val=max_val)


def relu6(x) -> Node:
    """min(max(x, 0), 6): hardtanh(x, 0, 6), gradient 0 at 0 and 6 (PyTorch)."""
    return hardtanh(x, 0, 6)


def log_sigmoid(x) -> Node:
    """log(sigmoid(x)), computed as min(x, 0) - log1p(exp(-|x|)); gradient sigmoid(-x)."""
    return apply("log_sigmoid", x)


logsigmoid = log_sigmoid  # PyTorch's name (torch.nn.functional.logsigmoid)


def softsign(x) -> Node:
    """x / (1 + |x|)."""
    return apply("softsign", x)
