"""The grammar of the scalar-expression language (graphc/ops/scalar.py tells the whole
story): every head an expression may use, the symbols that stand for a kernel's inputs,
and the common-subexpression form every interpreter evaluates."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import sympy

from graphc.errors import build_error
from graphc.ops import scalar_functions as fn

TYPED_NAMES = {fn.FloorDivide: "floor_divide", fn.TruncDivide: "trunc_divide",
               fn.Remainder: "remainder", fn.BitwiseAnd: "bitwise_and",
               fn.BitwiseOr: "bitwise_or", fn.BitwiseXor: "bitwise_xor",
               fn.BitwiseNot: "bitwise_not", fn.LeftShift: "left_shift",
               fn.RightShift: "right_shift"}
"""The ops the typed functions compute (one class per dtype: scalar_functions.typed)."""

STRUCTURE = ("number", "symbol", "add", "mul", "pow", "piecewise")

GRAMMAR: dict[type, str] = {
    sympy.Add: "add", sympy.Mul: "mul", sympy.Pow: "pow", sympy.Piecewise: "piecewise",
    # elementwise ops
    sympy.exp: "exp", sympy.log: "log", sympy.tanh: "tanh", sympy.erf: "erf",
    sympy.sin: "sin", sympy.cos: "cos", sympy.sign: "sign", sympy.Abs: "abs",
    sympy.tan: "tan", sympy.sinh: "sinh", sympy.cosh: "cosh", sympy.asin: "asin",
    sympy.acos: "acos", sympy.atan: "atan", sympy.atan2: "atan2",
    fn.Sigmoid: "sigmoid", fn.Relu: "relu", fn.Sign: "sign", fn.AbsF: "abs", fn.Gelu: "gelu",
    fn.GeluTanh: "gelu_tanh", fn.Maximum: "maximum", fn.Minimum: "minimum",
    fn.Log1p: "log1p", fn.Expm1: "expm1", fn.Floor: "floor", fn.Ceil: "ceil",
    fn.RoundEven: "round", fn.Trunc: "trunc", fn.CopySign: "copysign",
    # indicators (bool-valued: a bool is the number 0 or 1)
    fn.IsNan: "isnan", fn.IsInf: "isinf", fn.IsFinite: "isfinite",
    # typed functions, one class per dtype (scalar_functions.typed)
    **{cls: TYPED_NAMES[base] for cls, base in fn.typed_classes().items()},
    # relations (bool-valued ops)
    sympy.StrictGreaterThan: "greater", sympy.GreaterThan: "greater_equal",
    sympy.StrictLessThan: "less", sympy.LessThan: "less_equal",
    sympy.Equality: "equal", sympy.Unequality: "not_equal",
    # logic on truth values
    sympy.And: "logical_and", sympy.Or: "logical_or", sympy.Not: "logical_not",
    sympy.Xor: "logical_xor",
}
"""sympy head -> its meaning: a structure name, or the elementwise op it applies."""

RELATIONS = frozenset({"greater", "greater_equal", "less", "less_equal", "equal",
                       "not_equal"})

NOT_REAL = (sympy.I, sympy.zoo, sympy.nan)  # values sympy reaches that a real graph has not


def head(expr: sympy.Basic) -> str:
    """What an expression's top is, by the grammar: 'number', 'symbol', a structure or op
    name; raises for anything the language does not have."""
    if expr.is_Number or expr.is_NumberSymbol or expr in NOT_REAL \
            or expr is sympy.true or expr is sympy.false:
        return "number"
    if expr.is_Symbol:
        return "symbol"
    try:
        return GRAMMAR[type(expr)]
    except KeyError:
        raise NotImplementedError(f"{type(expr).__name__} ({expr}) is not in the scalar "
                                  "expression language") from None


@functools.cache
def input_symbols(n: int) -> tuple[sympy.Symbol, ...]:
    """The symbols x0 .. x{n-1} that stand for a fused node's (or an op's) inputs."""
    return tuple(sympy.Symbol(f"x{i}", real=True) for i in range(n))


def check_expression(op: str, expr, symbols: Sequence[sympy.Symbol]) -> None:
    """Refuse an `expr` attribute that is not a sympy expression of the given symbols."""
    if not isinstance(expr, sympy.Basic):
        raise build_error(op, f"expr must be a sympy expression, got {type(expr).__name__}")
    unknown = _free_symbols(expr) - set(symbols)
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise build_error(op, f"expr uses {names}, which are not among its inputs "
                          f"({', '.join(map(str, symbols))})")


@functools.lru_cache(maxsize=4096)
def _free_symbols(expr: sympy.Basic) -> frozenset[sympy.Symbol]:
    """An expression's symbols (cached: a pass rebuilds a fused node, which checks its
    expression, each time an operand of it changes, and sympy walks the whole tree)."""
    return frozenset(expr.free_symbols)


@functools.lru_cache(maxsize=4096)
def kernel_body(expr: sympy.Basic) -> tuple[tuple[tuple[sympy.Symbol, sympy.Basic], ...],
                                            sympy.Basic]:
    """sympy.cse of an expression, without re-evaluating it: (assignments, result).

    A reciprocal `Pow(b, -1)` that cse made a temporary is put back where it is used,
    so `a * Pow(b, -1)` stays the division a / b (a multiplication by a rounded 1/b is
    not the same number). Cached: every call of a compiled function evaluates the same
    bodies, and sympy.cse costs milliseconds."""
    with sympy.evaluate(False):
        assignments, results = sympy.cse(expr, symbols=sympy.numbered_symbols("t"))
        kept, (result,) = inline_reciprocals(assignments, results)
        return kept, result


def inline_reciprocals(assignments, results):
    """sympy.cse's (assignments, results) with every reciprocal temporary put back where
    it is used (call under sympy.evaluate(False)): (assignments, results) as tuples."""
    inline: dict[sympy.Symbol, sympy.Basic] = {}
    kept = []
    for temp, value in assignments:
        value = value.xreplace(inline)
        if value.is_Pow and value.exp == -1:
            inline[temp] = value
        else:
            kept.append((temp, value))
    return tuple(kept), tuple(r.xreplace(inline) for r in results)
