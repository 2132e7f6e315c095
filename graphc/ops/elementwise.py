"""Elementwise ops: one table entry each, with NumPy broadcasting and dtype promotion, and
their builders (`gc.add`, `gc.exp`, ...).

Each entry gives the NumPy reference and the expression of one scalar in the scalar
language (graphc/ops/scalar.py); gradients and fused kernels are derived from the
expression.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import sympy

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, get_op, register
from graphc.ops import scalar
from graphc.ops.erf_numpy import erf as erf_numpy
from graphc.ops.leaf import as_weak, is_weak, operands
from graphc.shapes import broadcast, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "neg", "abs", "sign", "exp",
    "log", "sqrt", "sin", "cos", "tanh", "erf", "sigmoid", "relu", "silu", "equal",
    "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
    "logical_or", "logical_not", "leaky_relu", "gelu", "clip", "where", "cast",
]


def _ieee(fn):
    """Run a NumPy function with IEEE semantics: no warnings for inf, nan or division by 0."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapped


def _stable_sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _gelu(x):
    return 0.5 * x * (1 + erf_numpy(x / np.sqrt(2.0).astype(x.dtype)))


_TANH_C = math.sqrt(2 / math.pi)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(_TANH_C * (x + 0.044715 * x**3)))


def _clip(x, lo=None, hi=None):
    if lo is not None:
        x = np.where(x < lo, np.asarray(lo, x.dtype), x)
    if hi is not None:
        x = np.where(x > hi, np.asarray(hi, x.dtype), x)
    return x


def _clip_sym(x, lo=None, hi=None):
    pieces = []
    if lo is not None:
        pieces.append((sympy.Float(lo) if isinstance(lo, float) else sympy.Integer(lo), x < lo))
    if hi is not None:
        pieces.append((sympy.Float(hi) if isinstance(hi, float) else sympy.Integer(hi), x > hi))
    return scalar.piecewise(*pieces, (x, True))


def _as_number(condition):
    """A sympy boolean as the number 1 or 0 (bools are 0/1 numbers in scalar expressions).

    Piecewise bodies are built without evaluation throughout (scalar.piecewise): sympy's
    constructor would rewrite conditions over large fused expressions through `simplify`."""
    return scalar.piecewise((sympy.S.One, condition), (sympy.S.Zero, True))


class Elementwise(Op):
    """An op applied element by element over the broadcast shape of its inputs.

    dtype_rule: "arith" (promote, no bool), "div" (promote, then float), "float"
    (float-valued function: ints give float64), "same" (keeps the dtype, no bool),
    "compare" (gives bool), "logical" (bool to bool), "where" (bool condition, promoted
    values), "cast", "bitwise" (ints, bools as 0/1, promoted), "shift" (ints, promoted).

    typed: the expression computes in the node's own dtype, given as attrs["dtype"] by
    the builder (a typed function of the scalar language: integer division and bitwise
    ops are exact only in their own type, whatever a fused kernel computes in).
    """

    pattern = Pattern.ELEMENTWISE

    def __init__(self, name, arity, reference, sym, dtype_rule, differentiable=True,
                 partials=None, typed=False):
        self.name = name
        self.arity = arity
        self.reference = reference
        self.sym = sym
        self.dtype_rule = dtype_rule
        self.differentiable = differentiable
        self._partials = partials
        self.typed = typed

    def infer(self, inputs, attrs):
        if len(inputs) != self.arity:
            raise build_error(self.name, f"takes {self.arity} inputs, got {len(inputs)}")
        try:
            shape = broadcast(*(i.shape for i in inputs))
        except ValueError:
            shapes = ", ".join(shape_str(i.shape) for i in inputs)
            raise build_error(self.name, f"shapes {shapes} do not broadcast") from None
        dtype = self._dtype(inputs, attrs)
        if self.typed and attrs.get("dtype") != dtype.name:
            raise build_error(self.name, f"attrs['dtype'] must be the result's dtype "
                              f"{dtype.name}, got {attrs.get('dtype')!r}", dtype=True)
        return dtype, shape

    def _dtype(self, inputs, attrs):
        kinds = [i.dtype for i in inputs]
        rule = self.dtype_rule
        if rule == "cast":
            return dtypes.as_dtype(attrs["dtype"])
        if rule == "compare":
            return dtypes.BOOL
        if rule == "logical":
            if any(k != dtypes.BOOL for k in kinds):
                names = ", ".join(k.name for k in kinds)
                raise build_error(self.name, f"takes bool inputs, got {names}", dtype=True)
            return dtypes.BOOL
        if rule == "where":
            if kinds[0] != dtypes.BOOL:
                raise build_error(self.name, f"condition must be bool, got {kinds[0].name}",
                                  dtype=True)
            return dtypes.promote(*kinds[1:])
        if rule in ("bitwise", "shift"):
            return self._integer_dtype(kinds)
        if dtypes.BOOL in kinds:
            names = ", ".join(k.name for k in kinds)
            raise build_error(self.name, f"does not take bool inputs (got {names}); "
                              "cast them first", dtype=True)
        result = dtypes.promote(*kinds)
        if rule in ("div", "float"):
            return dtypes.float_result(result)
        return result

    def _integer_dtype(self, kinds):
        """The result of a bitwise op or shift: the promoted int dtype (bools are 0 and 1
        to a bitwise op; bool with bool is logical_and/or/xor/not, the builders' choice)."""
        allowed = "int" if self.dtype_rule == "shift" else "int or bool"
        names = ", ".join(k.name for k in kinds)
        if any(dtypes.is_float(k) or (k == dtypes.BOOL and self.dtype_rule == "shift")
               for k in kinds):
            raise build_error(self.name, f"takes {allowed} inputs, got {names}", dtype=True)
        result = dtypes.promote(*kinds)
        if result == dtypes.BOOL:
            raise build_error(self.name, "of bools is a logical op: use logical_and, "
                              "logical_or, logical_xor, logical_not (or & | ^ ~)", dtype=True)
        return result

    def numpy(self, node, args, env):
        return np.asarray(self.reference(*args, **node.attrs)).astype(node.dtype, copy=False)

    def expression(self, symbols, attrs):
        """The sympy expression of this op applied to scalar `symbols`."""
        return self.sym(*symbols, **attrs)

    def partials(self, symbols, attrs) -> list[sympy.Basic]:
        """d expression / d symbol_i: sympy's, or the op's own rules where sympy's leave
        the reals or differ from the convention (pow at base 0)."""
        if self._partials is not None:
            return self._partials(*symbols, **attrs)
        expr = self.expression(symbols, attrs)
        return [sympy.diff(expr, s) for s in symbols]

    def grad(self, node, out_grad):
        symbols, expr, partials = _derivatives(node.op, tuple(sorted(node.attrs.items())),
                                               len(node.inputs))
        return scalar.expression_grads(expr, symbols, node.inputs, node, out_grad, partials)


@functools.cache
def _derivatives(op_name: str, attrs: tuple, arity: int):
    """(symbols, expression, [d expression / d symbol_i]) of an op with given attrs."""
    symbols = scalar.input_symbols(arity)
    op = get_op(op_name)
    return symbols, op.expression(symbols, dict(attrs)), op.partials(symbols, dict(attrs))


def _of_floats(fn):
    """A float function's reference taking ints as float64 (its result dtype): sigmoid, erf
    and gelu build their result in their input's dtype, which truncated them to ints."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        args = [a.astype(dtypes.float_result(a.dtype), copy=False)
                if isinstance(a, (np.ndarray, np.generic)) else a for a in args]
        return fn(*args, **kwargs)

    return wrapped


def define(name, arity, reference, sym, dtype_rule, differentiable=True, partials=None,
           typed=False) -> Elementwise:
    """Register an elementwise op: its NumPy reference, its expression `sym(*symbols,
    **attrs)` in the scalar language, its dtype rule (see Elementwise), and optionally its
    own partial derivatives `partials(*symbols, **attrs)` where sympy's are not the
    convention."""
    reference = _of_floats(reference) if dtype_rule == "float" else reference
    return register(Elementwise(name, arity, _ieee(reference), sym, dtype_rule, differentiable,
                                partials, typed))


def _pow_partials(x, y):
    """PyTorch's rules for x ** y: d/dx = y x**(y-1), 0 where y == 0 (sympy's y x**y / x is
    NaN at x = 0); d/dy = x**y log x, 0 where x == 0 and y >= 0 (0**y log 0 is 0 * -inf
    there). A negative base gives log x = NaN, as in PyTorch."""
    dx = scalar.piecewise((sympy.S.Zero, sympy.Eq(y, 0)), (y * x ** (y - 1), True))
    dy = scalar.piecewise((sympy.S.Zero, sympy.And(sympy.Eq(x, 0), y >= 0)),
                          (x ** y * sympy.log(x), True))
    return [dx, dy]


# ----- arithmetic ----------------------------------------------------------------------
define("add", 2, np.add, lambda a, b: a + b, "arith")
define("sub", 2, np.subtract, lambda a, b: a - b, "arith")
define("mul", 2, np.multiply, lambda a, b: a * b, "arith")
define("div", 2, np.true_divide, lambda a, b: a / b, "div")
define("pow", 2, np.power, lambda a, b: a ** b, "arith", partials=_pow_partials)
define("maximum", 2, np.maximum, scalar.Maximum, "arith")
define("minimum", 2, np.minimum, scalar.Minimum, "arith")
define("neg", 1, np.negative, lambda a: -a, "same")
define("abs", 1, np.abs, scalar.AbsF, "same")
define("sign", 1, np.sign, scalar.Sign, "same")
define("relu", 1, lambda x: np.maximum(x, 0), scalar.Relu, "same")
define("leaky_relu", 1, lambda x, slope: np.where(x > 0, x, x * slope),
       lambda x, slope: scalar.piecewise((x, x > 0), (sympy.Float(slope) * x, True)),
       "same")
define("clip", 1, _clip, _clip_sym, "same")

# ----- float-valued functions ------------------------------------------------------------
define("exp", 1, np.exp, sympy.exp, "float")
define("log", 1, np.log, sympy.log, "float")
define("sqrt", 1, np.sqrt, sympy.sqrt, "float")
define("sin", 1, np.sin, sympy.sin, "float")
define("cos", 1, np.cos, sympy.cos, "float")
define("tanh", 1, np.tanh, sympy.tanh, "float")
define("erf", 1, erf_numpy, sympy.erf, "float")
define("sigmoid", 1, _stable_sigmoid, scalar.Sigmoid, "float")
define("silu", 1, lambda x: x * _stable_sigmoid(x), lambda x: x * scalar.Sigmoid(x),
       "float")
define("gelu", 1, _gelu, scalar.Gelu, "float")
define("gelu_tanh", 1, _gelu_tanh, scalar.GeluTanh, "float")

# ----- comparisons, selection, casts --------------------------------------------------------
define("equal", 2, np.equal, lambda a, b: _as_number(sympy.Eq(a, b)), "compare", False)
define("not_equal", 2, np.not_equal, lambda a, b: _as_number(sympy.Ne(a, b)), "compare",
       False)
define("less", 2, np.less, lambda a, b: _as_number(a < b), "compare", False)
define("less_equal", 2, np.less_equal, lambda a, b: _as_number(a <= b), "compare", False)
define("greater", 2, np.greater, lambda a, b: _as_number(a > b), "compare", False)
define("greater_equal", 2, np.greater_equal, lambda a, b: _as_number(a >= b), "compare",
       False)
define("logical_and", 2, np.logical_and,
       lambda a, b: _as_number(sympy.And(sympy.Ne(a, 0), sympy.Ne(b, 0))), "logical", False)
define("logical_or", 2, np.logical_or,
       lambda a, b: _as_number(sympy.Or(sympy.Ne(a, 0), sympy.Ne(b, 0))), "logical", False)
define("logical_not", 1, np.logical_not, lambda a: _as_number(sympy.Eq(a, 0)), "logical",
       False)
define("where", 3, np.where,
       lambda c, a, b: scalar.piecewise((a, sympy.Ne(c, 0)), (b, True)),
       "where")
define("cast", 1, lambda x, dtype: x.astype(dtype), lambda x, dtype: x, "cast")


# ----- integer powers -------------------------------------------------------------------------
def negative_power_message(node, value) -> str:
    """Why an integer power with a negative exponent is refused (as NumPy, PyTorch)."""
    return (f"pow: integers to negative integer powers are not allowed: the {node.attrs['role']} "
            f"({node.dtype.name}, shape {shape_str(node.shape)}) holds {value} "
            f"(at {node.origin})")


class NonnegativeCheck(Op):
    """Its input, refused (ValueError at call time) where an element is negative: the
    exponent of an integer power, whose result would not be an integer. attrs: role (what
    the message calls the value)."""

    name = "nonnegative_check"
    differentiable = False

    def infer(self, inputs, attrs):
        (x,) = inputs
        if not dtypes.is_int(x.dtype):
            raise build_error(self.name, f"takes an int input, got {x.dtype.name}", dtype=True)
        return x.dtype, x.shape

    def numpy(self, node, args, env):
        (x,) = args
        negative = x[x < 0]
        if negative.size:
            raise ValueError(negative_power_message(node, int(negative[0])))
        return x


register(NonnegativeCheck())


def pow_operands(base: Node, exponent: Node) -> tuple[Node, Node]:
    """The operands of base ** exponent. An integer power's exponent must not be negative:
    a constant one is checked now, any other at call time (a nonnegative_check node)."""
    if not (dtypes.is_int(base.dtype) and dtypes.is_int(exponent.dtype)) \
            or dtypes.is_unsigned(exponent.dtype):
        return base, exponent
    if exponent.op == "constant":
        negative = exponent.value[exponent.value < 0]
        if negative.size:
            raise build_error("pow", f"integers to negative integer powers are not allowed: "
                              f"the exponent ({exponent.dtype.name}, shape "
                              f"{shape_str(exponent.shape)}) holds {int(negative[0])}")
        return base, exponent
    return base, Node.make("nonnegative_check", (exponent,), role="exponent")


# ----- builders -----------------------------------------------------------------------------
def values(op: str, *xs, reference=None) -> tuple[Node, ...]:
    """The builder's operands as graph values (leaf.operands), refused with the op's name
    and the user's line: a Python int out of the range of the int dtype it takes, or
    something that is no value (a string)."""
    try:
        return operands(*xs, reference=reference)
    except OverflowError as exc:
        raise build_error(op, str(exc)) from None
    except TypeError as exc:
        raise build_error(op, str(exc), dtype=True) from None


def apply(op: str, *xs, **attrs) -> Node:
    """The node of `op` over mixed operands (graph values, Python scalars, arrays)."""
    return Node.make(op, values(op, *xs), **attrs)


def typed_apply(op: str, *xs) -> Node:
    """The node of a typed op (Elementwise.typed): computed in the operands' promoted
    dtype, which it carries as attrs["dtype"]."""
    nodes = values(op, *xs)
    return Node.make(op, nodes, dtype=dtypes.promote(*(n.dtype for n in nodes)).name)


def add(a, b) -> Node: return apply("add", a, b)
def sub(a, b) -> Node: return apply("sub", a, b)
def mul(a, b) -> Node: return apply("mul", a, b)


def div(a, b, rounding_mode: str | None = None) -> Node:
    """a / b: true division (ints give float64) by default, as PyTorch's div;
    rounding_mode="trunc" rounds toward 0 (C's integer division), "floor" toward -inf
    (floor_divide, Python's //), both keeping an integer dtype. An integer division by
    0 gives 0 (NumPy's value: see graphc/ops/division.py)."""
    if rounding_mode is None:
        return apply("div", a, b)
    modes = {"trunc": "trunc_divide", "floor": "floor_divide"}
    if rounding_mode not in modes:
        raise build_error("div", f"rounding_mode must be None, 'trunc' or 'floor', got "
                          f"{rounding_mode!r}")
    return typed_apply(modes[rounding_mode], a, b)


def pow(a, b) -> Node:  # noqa: A001
    return Node.make("pow", pow_operands(*values("pow", a, b)))
def maximum(a, b) -> Node: return apply("maximum", a, b)
def minimum(a, b) -> Node: return apply("minimum", a, b)
def neg(x) -> Node: return apply("neg", x)
def abs(x) -> Node: return apply("abs", x)  # noqa: A001
def sign(x) -> Node: return apply("sign", x)
def exp(x) -> Node: return apply("exp", x)
def log(x) -> Node: return apply("log", x)
def sqrt(x) -> Node: return apply("sqrt", x)
def sin(x) -> Node: return apply("sin", x)
def cos(x) -> Node: return apply("cos", x)
def tanh(x) -> Node: return apply("tanh", x)
def erf(x) -> Node: return apply("erf", x)
def sigmoid(x) -> Node: return apply("sigmoid", x)
def relu(x) -> Node: return apply("relu", x)
def silu(x) -> Node: return apply("silu", x)  # x * sigmoid(x), PyTorch's SiLU (swish)
def equal(a, b) -> Node: return apply("equal", a, b)
def not_equal(a, b) -> Node: return apply("not_equal", a, b)
def less(a, b) -> Node: return apply("less", a, b)
def less_equal(a, b) -> Node: return apply("less_equal", a, b)
def greater(a, b) -> Node: return apply("greater", a, b)
def greater_equal(a, b) -> Node: return apply("greater_equal", a, b)
def logical_and(a, b) -> Node: return apply("logical_and", a, b)
def logical_or(a, b) -> Node: return apply("logical_or", a, b)
def logical_not(x) -> Node: return apply("logical_not", x)


def leaky_relu(x, slope: float = 0.01) -> Node:
    """x where x > 0, else slope * x."""
    return apply("leaky_relu", x, slope=float(slope))


def gelu(x, approximate: str = "none") -> Node:
    """x * Phi(x) (exact, erf form); approximate="tanh" gives the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise build_error("gelu", f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return apply("gelu" if approximate == "none" else "gelu_tanh", x)


def clip(x, lo=None, hi=None) -> Node:
    """x limited to [lo, hi] (either may be None); the gradient is 1 inside, bounds included."""
    for bound in (lo, hi):
        if bound is not None and not is_weak(bound):
            raise build_error("clip", f"bounds must be Python numbers or None, got {bound!r}")
    lo, hi = (None if b is None else as_weak(b) for b in (lo, hi))
    if lo is not None and hi is not None and lo > hi:
        raise build_error("clip", f"lo {lo} is greater than hi {hi}")
    return apply("clip", x, lo=lo, hi=hi)


def where(condition, a, b) -> Node:
    """a where condition (a bool value) holds, else b; broadcast like numpy.where."""
    (condition,) = operands(condition, reference=dtypes.BOOL)
    a, b = operands(a, b)
    return Node.make("where", (condition, a, b))


def cast(x, dtype) -> Node:
    """x converted to dtype (float to int truncates toward zero, as NumPy)."""
    (x,) = operands(x)
    dtype = dtypes.as_dtype(dtype)
    return x if x.dtype == dtype else Node.make("cast", (x,), dtype=dtype.name)
