"""Elementwise ONNX ops: arithmetic, comparisons, logic, math functions, Cast, Where,
Clip and the variadic Sum/Mean/Max/Min. ONNX's multidirectional broadcasting is NumPy's,
as graphc's; its ops take operands of one dtype, so NumPy promotion never enters."""

from __future__ import annotations

import functools

import numpy as np
import sympy

from graphc import dtypes
from graphc.ir.node import Node
from graphc.onnx.converters.common import number
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.onnx.types import graphc_dtype, type_name
from graphc.ops import division
from graphc.ops import elementwise as ew
from graphc.ops import functions as fn
from graphc.ops.elementwise import cast, where


# ----- folds of shape arithmetic (static values holding symbolic dims) ------------------------
def _fold_with(fn):
    """A fold applying `fn` to the static inputs (object arrays of dims); None when a
    symbolic value makes it undecidable."""

    def fold(ctx, statics):
        try:
            return fn(*[s for s in statics if s is not None])
        except (TypeError, ValueError, ZeroDivisionError):
            return None

    return fold


def _decided_equal(a, b):
    """a == b for dims, True or False only where sympy can prove it, else raise TypeError."""
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        return bool(a == b)
    difference = sympy.sympify(a) - sympy.sympify(b)
    if difference.is_zero is None:
        raise TypeError("undecidable")
    return bool(difference.is_zero)


def _fold_equal(a, b):
    a, b = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    return np.array([_decided_equal(x, y) for x, y in zip(a.ravel(), b.ravel())],
                    dtype=bool).reshape(a.shape)


def _fold_max(*arrays):
    def dim_max(*values):
        return sympy.Max(*values) if any(isinstance(v, sympy.Basic) for v in values) \
            else max(values)
    return np.vectorize(dim_max, otypes=[object])(*arrays)


def _fold_min(*arrays):
    def dim_min(*values):
        return sympy.Min(*values) if any(isinstance(v, sympy.Basic) for v in values) \
            else min(values)
    return np.vectorize(dim_min, otypes=[object])(*arrays)


# ----- arithmetic -----------------------------------------------------------------------------
@converter("Add", fold=_fold_with(lambda a, b: a + b))
def add(ctx):
    return ctx.input(0) + ctx.input(1)


@converter("Sub", fold=_fold_with(lambda a, b: a - b))
def sub(ctx):
    return ctx.input(0) - ctx.input(1)


@converter("Mul", fold=_fold_with(lambda a, b: a * b))
def mul(ctx):
    return ctx.input(0) * ctx.input(1)


@converter("Div", fold=_fold_with(lambda a, b: a // b))  # dims are nonnegative: // truncates
def div(ctx):
    a, b = ctx.input(0), ctx.input(1)
    if dtypes.is_float(a.dtype):
        return a / b
    # ONNX divides integers truncating toward zero: a float64 quotient cast back does
    # (exact for int32; int64 operands beyond 2**53 round first)
    return cast(a / b, a.dtype)


@converter("Pow")
def pow_(ctx):
    base, exponent = ctx.input(0), ctx.input(1)
    if dtypes.is_float(base.dtype) or not dtypes.is_float(exponent.dtype):
        return ew.pow(base, cast(exponent, base.dtype))  # the result has the base's type
    return cast(ew.pow(cast(base, exponent.dtype), exponent), base.dtype)


@converter("Neg", fold=_fold_with(lambda a: -a))
def neg(ctx):
    return -ctx.input(0)


@converter("Reciprocal")
def reciprocal(ctx):
    x = ctx.input(0)
    return 1.0 / x


def _unary(op_type: str, builder) -> None:
    converter(op_type)(lambda ctx: builder(ctx.input(0)))


for _op_type, _builder in (("Abs", ew.abs), ("Sign", ew.sign), ("Sqrt", ew.sqrt),
                           ("Exp", ew.exp), ("Log", ew.log), ("Tanh", ew.tanh),
                           ("Sigmoid", ew.sigmoid), ("Relu", ew.relu), ("Erf", ew.erf),
                           ("Sin", ew.sin), ("Cos", ew.cos), ("Not", ew.logical_not),
                           ("Floor", fn.floor), ("Ceil", fn.ceil), ("Round", fn.round),
                           ("IsNaN", fn.isnan), ("Tan", fn.tan), ("Asin", fn.asin),
                           ("Acos", fn.acos), ("Atan", fn.atan), ("Sinh", fn.sinh),
                           ("Cosh", fn.cosh)):
    _unary(_op_type, _builder)


# ----- comparisons and logic ------------------------------------------------------------------
@converter("Equal", fold=_fold_with(_fold_equal))
def equal(ctx):
    return ew.equal(ctx.input(0), ctx.input(1))


for _op_type, _builder in (("Less", ew.less), ("LessOrEqual", ew.less_equal),
                           ("Greater", ew.greater), ("GreaterOrEqual", ew.greater_equal),
                           ("And", ew.logical_and), ("Or", ew.logical_or),
                           ("Xor", ew.not_equal)):
    converter(_op_type)(functools.partial(
        lambda ctx, builder: builder(ctx.input(0), ctx.input(1)), builder=_builder))


@converter("Where", fold=_fold_with(lambda c, a, b: np.where(c.astype(bool), a, b)))
def where_(ctx):
    return where(ctx.input(0), ctx.input(1), ctx.input(2))


@converter("IsInf")
def isinf(ctx):
    """gc.isinf, or one sign of infinity only (detect_positive / detect_negative)."""
    x = ctx.input(0)
    positive, negative = ctx.attr("detect_positive", 1), ctx.attr("detect_negative", 1)
    if not dtypes.is_float(x.dtype) or (positive and negative):
        return fn.isinf(x)
    if positive or negative:
        return ew.equal(x, np.inf if positive else -np.inf)
    return ew.logical_and(fn.isinf(x), ew.not_equal(x, x))  # nothing to detect: all False


# ----- selection and limits ---------------------------------------------------------------------
@converter("Clip")
def clip(ctx):
    x = ctx.input(0)
    bounds = []
    for i in (1, 2):
        if not ctx.has_input(i):
            bounds.append(None)
        elif ctx.is_static(i):
            value = ctx.static(i, "min" if i == 1 else "max")
            if value.size != 1:
                raise ctx.error(f"{'min' if i == 1 else 'max'} must be a scalar, got shape "
                                f"{value.shape}")
            bounds.append(number(value.reshape(-1)[0], x.dtype))
        else:
            bounds.append(ctx.input(i))
    lo, hi = bounds
    if not any(isinstance(b, Node) for b in bounds) and not (
            lo is not None and hi is not None and lo > hi):
        return ew.clip(x, lo, hi)
    # bounds computed at run time, or min > max (ONNX then gives max everywhere)
    out = x if lo is None else ew.maximum(x, lo)
    return out if hi is None else ew.minimum(out, hi)


def _variadic(builder):
    def convert(ctx):
        values = ctx.inputs()
        if not values:
            raise ctx.error("needs at least one input")
        return functools.reduce(builder, values)
    return convert


converter("Max", fold=_fold_with(_fold_max))(_variadic(ew.maximum))
converter("Min", fold=_fold_with(_fold_min))(_variadic(ew.minimum))
converter("Sum", fold=_fold_with(lambda *a: functools.reduce(np.add, a)))(_variadic(ew.add))


@converter("Mean")
def mean(ctx):
    values = ctx.inputs()
    if not values:
        raise ctx.error("needs at least one input")
    return functools.reduce(ew.add, values) / float(len(values))


# ----- dtypes --------------------------------------------------------------------------------
def target_dtype(ctx, elem_type: int):
    dtype = graphc_dtype(elem_type)
    if dtype is None:
        raise Unsupported(f"the target type {type_name(elem_type)} is not a graphc dtype")
    return dtype


def _fold_cast(ctx, statics):
    """A cast of symbolic dims to an integer type keeps them (they are integers)."""
    dtype = graphc_dtype(ctx.attr("to", 0))
    return statics[0] if dtype is not None and dtypes.is_int(dtype) else None


@converter("Cast", fold=_fold_cast)
def cast_(ctx):
    return cast(ctx.input(0), target_dtype(ctx, ctx.attr("to", 0)))


@converter("CastLike")
def cast_like(ctx):
    return cast(ctx.input(0), ctx.dtype(1))


@converter("Identity", fold=lambda ctx, statics: statics[0])
def identity(ctx):
    return ctx.input(0)


def _mod(a: np.ndarray, b: np.ndarray, fmod: bool) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.fmod(a, b) if fmod else np.mod(a, b)


@converter("Mod", fold=_fold_with(lambda a, b: a % b))  # dims are nonnegative
def mod(ctx):
    """fmod=0: the remainder with the divisor's sign (gc.remainder, Python's %); fmod=1:
    with the dividend's sign (C's fmod), the remainder of the magnitudes given a's sign."""
    if ctx.is_static(0) and ctx.is_static(1):
        a, b = ctx.static(0, "A"), ctx.static(1, "B")
        if a.dtype != object and b.dtype != object:
            return _mod(a, b, bool(ctx.attr("fmod", 0))).astype(a.dtype)
    a, b = ctx.input(0), ctx.input(1)
    fmod = ctx.attr("fmod", 0)
    if not fmod:
        return division.remainder(a, b)
    magnitude = division.remainder(ew.abs(a), ew.abs(b))
    return where(ew.less(a, 0), -magnitude, magnitude)
