"""Emit LLVM IR for a sympy expression of scalars: the one emitter behind every
elementwise op and every fused kernel.

Numbers are computed in one compute dtype (float or int, signed or unsigned); relations,
logic and the isnan-like tests give i1. Common subexpressions are emitted once. The
functions follow NumPy's semantics: NaN propagates through maximum/minimum/relu/sign,
sigmoid uses its stable form, and the math functions exp, log, tanh, erf, log1p, expm1,
sinh, cosh and the arc tangents are emitted as plain arithmetic (so loops over them
vectorize: mathfuncs.py, inverse.py); sin, cos, tan and pow are LLVM intrinsics (libm
calls), the roundings and copysign intrinsics that are instructions. A typed function
(FloorDivide_int32, BitwiseAnd_uint8) is computed in its own dtype by an emitter of that
dtype, its operands converted to it and its value back (arith.py has the integer rules).
"""

from __future__ import annotations

import math

import numpy as np
import sympy
from llvmlite import ir

from graphc.backends.llvm.codegen import arith
from graphc.backends.llvm.codegen.inverse import InverseFunctions
from graphc.backends.llvm.codegen.irtypes import (
    I1,
    const,
    convert,
    icmp,
    is_float,
    is_unsigned,
    llvm_type,
)
from graphc.backends.llvm.codegen.mathfuncs import MathFunctions
from graphc.ops import scalar

_RELATIONS = {"greater": ">", "greater_equal": ">=", "less": "<", "less_equal": "<=",
              "equal": "==", "not_equal": "!="}


class ExpressionEmitter(MathFunctions, InverseFunctions):
    """Emits expressions over `env` (symbol -> LLVM value of the compute dtype)."""

    def __init__(self, b: ir.IRBuilder, mc, dtype: np.dtype, env: dict[sympy.Symbol, ir.Value],
                 definitions: dict[sympy.Symbol, sympy.Basic] | None = None):
        self.b = b
        self.mc = mc
        self.dtype = np.dtype(dtype)
        self.type = llvm_type(self.dtype)
        self.float = is_float(self.dtype)
        self.unsigned = is_unsigned(self.dtype)
        self.memo: dict[sympy.Basic, ir.Value] = dict(env)
        self._symbolic: dict[sympy.Basic, bool] = {}
        # Temporaries emitted where first used (once): a multi-output kernel's outputs
        # each need only some of its shared sympy.cse assignments.
        self.definitions = definitions or {}

    # ----- helpers ---------------------------------------------------------------------------
    def number(self, value) -> ir.Value:
        return const(self.dtype, value)

    def as_number(self, value: ir.Value) -> ir.Value:
        """An i1 used as a number is 1 or 0."""
        if value.type == I1:
            return self.b.uitofp(value, self.type) if self.float else self.b.zext(value, self.type)
        return value

    def as_condition(self, value: ir.Value) -> ir.Value:
        if value.type == I1:
            return value
        return self.compare("!=", value, self.number(0))

    def compare(self, op: str, x: ir.Value, y: ir.Value) -> ir.Value:
        if self.float:
            # NumPy: every comparison with NaN is False except !=, which is True.
            if op == "!=":
                return self.b.fcmp_unordered(op, x, y)
            return self.b.fcmp_ordered(op, x, y)
        return icmp(self.b, self.dtype, op, x, y)

    def call(self, fn, *args) -> ir.Value:
        return self.b.call(fn, list(args))

    def intrinsic(self, name: str, *args) -> ir.Value:
        return self.call(self.mc.intrinsic(name, self.type, len(args)), *args)

    # ----- the emitter -------------------------------------------------------------------------
    def emit(self, expr: sympy.Basic) -> ir.Value:
        """The value of `expr` (emitted once). Iterative, not recursive, however deep the
        expression: the subexpressions `_emit` asks for are emitted first, bottom-up, so
        its own requests find them emitted."""
        value = self.memo.get(expr)
        if value is not None:
            return value
        stack = [(expr, False)]
        while stack:
            e, ready = stack.pop()
            if e in self.memo:
                continue
            if ready:
                self.memo[e] = self._emit(e)
                continue
            stack.append((e, True))
            stack.extend((o, False) for o in reversed(self._operands(e)) if o not in self.memo)
        return self.memo[expr]

    def symbolic(self, expr: sympy.Basic) -> bool:
        """Whether `expr` has a symbol (memoized and iterative: sympy's free_symbols walks
        the whole subtree on every call, quadratic over a deep expression)."""
        known = self._symbolic
        stack = [expr]
        while stack:
            e = stack[-1]
            if e in known:
                stack.pop()
                continue
            pending = [a for a in e.args if a not in known]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            known[e] = e.is_Symbol or any(known[a] for a in e.args)
        return known[expr]

    def _operands(self, expr) -> list[sympy.Basic]:
        """The subexpressions `_emit(expr)` emits, in its order (an extra one would only
        be dead code)."""
        if expr is sympy.true or expr is sympy.false or not self.symbolic(expr):
            return []
        if expr.is_Symbol:
            return [self.definitions[expr]] if expr in self.definitions else []
        if expr.is_Mul:
            numerator, denominator = self._split_factors(expr)
            return numerator + denominator
        if expr.is_Pow:
            base, exponent = expr.args
            return [base, exponent] if self.symbolic(exponent) else [base]
        if isinstance(expr, sympy.Piecewise):  # the values, then conditions last to first
            pieces = expr.args
            return [v for v, _ in pieces] + [c for _, c in reversed(pieces[:-1])]
        return list(expr.args)

    def num(self, expr) -> ir.Value:
        return self.as_number(self.emit(expr))

    def _emit(self, expr) -> ir.Value:
        if expr is sympy.true or expr is sympy.false:
            return ir.Constant(I1, int(bool(expr)))
        if not self.symbolic(expr):
            if self.float:
                return self.number(float(expr))
            return self.number(int(expr))
        if expr.is_Symbol and expr in self.definitions:
            return self.emit(self.definitions[expr])
        if expr.is_Symbol:
            raise KeyError(f"internal error: unbound symbol {expr} in a kernel expression")
        kind = scalar.head(expr)
        return RULES[kind](self, expr)

    def _add(self, expr) -> ir.Value:
        terms = [self.num(a) for a in expr.args]
        out = terms[0]
        for t in terms[1:]:
            out = self.b.fadd(out, t) if self.float else self.b.add(out, t)
        return out

    def _fold(self, op, args) -> ir.Value:
        values = [self.as_condition(self.emit(a)) for a in args]
        out = values[0]
        for v in values[1:]:
            out = op(out, v)
        return out

    def _split_factors(self, expr) -> tuple[list[sympy.Basic], list[sympy.Basic]]:
        """A product's factors above and below the division bar (floats: a factor with a
        negative number as its exponent divides by the base to the opposite power, and
        the reciprocal of a number divides by it, as the reference does: x / 100.0 is not
        x * 0.01; LLVM makes a division by a power of two, which is exact, a product)."""
        numerator, denominator = [], []
        for factor in expr.args:
            base, exponent = factor.as_base_exp()
            if self.float and exponent.is_Number and exponent.is_negative \
                    and (self.symbolic(base) or exponent == -1):
                denominator.append(base if exponent == -1 else base ** -exponent)
            else:
                numerator.append(factor)
        return numerator, denominator

    def _mul(self, expr) -> ir.Value:
        b = self.b
        numerator, denominator = self._split_factors(expr)
        out = None
        for factor in numerator:
            v = self.num(factor)
            out = v if out is None else (b.fmul(out, v) if self.float else b.mul(out, v))
        if denominator:
            below = None
            for factor in denominator:
                v = self.num(factor)
                below = v if below is None else b.fmul(below, v)
            out = b.fdiv(self.number(1) if out is None else out, below)
        return out

    def _pow(self, base, exponent) -> ir.Value:
        b = self.b
        x = self.num(base)
        if exponent.is_Integer and 0 <= int(exponent) <= 16:
            return self._integer_power(x, int(exponent))
        if self.float:
            if exponent.is_Integer and int(exponent) < 0 and int(exponent) >= -16:
                return b.fdiv(self.number(1), self._integer_power(x, -int(exponent)))
            if exponent == sympy.S.Half:
                return self.intrinsic("sqrt", x)
            if exponent == -sympy.S.Half:
                return b.fdiv(self.number(1), self.intrinsic("sqrt", x))
            return self.intrinsic("pow", x, self.num(exponent))
        return self._int_pow(x, self.num(exponent))

    def _integer_power(self, x: ir.Value, k: int) -> ir.Value:
        """x**k by repeated squaring (k >= 0)."""
        b = self.b
        mul = b.fmul if self.float else b.mul
        result, square = None, x
        while k:
            if k & 1:
                result = square if result is None else mul(result, square)
            k >>= 1
            if k:
                square = mul(square, square)
        return self.number(1) if result is None else result

    def _int_pow(self, x: ir.Value, e: ir.Value) -> ir.Value:
        """Integer x**e for a run-time exponent e >= 0 (a negative one, which would give 1,
        is refused first: at build time or by a nonnegative_check kernel, see pow_operands)."""
        fn = self._int_pow_function()
        return self.b.call(fn, [x, e])

    def _int_pow_function(self) -> ir.Function:
        name = f"gc_ipow_{'u' if self.unsigned else ''}{self.type}"
        existing = self.mc.module.globals.get(name)
        if existing is not None:
            return existing
        t = self.type
        fn = ir.Function(self.mc.module, ir.FunctionType(t, [t, t]), name=name)
        fn.linkage = "internal"
        x, e = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        head = fn.append_basic_block("head")
        body = fn.append_basic_block("body")
        done = fn.append_basic_block("done")
        start = b.block
        b.branch(head)
        b.position_at_end(head)
        acc = b.phi(t)
        k = b.phi(t)
        acc.add_incoming(ir.Constant(t, 1), start)
        k.add_incoming(e, start)
        b.cbranch(icmp(b, self.dtype, ">", k, ir.Constant(t, 0)), body, done)
        b.position_at_end(body)
        acc.add_incoming(b.mul(acc, x), body)
        k.add_incoming(b.sub(k, ir.Constant(t, 1)), body)
        b.branch(head)
        b.position_at_end(done)
        b.ret(acc)
        return fn

    def _piecewise(self, pieces) -> ir.Value:
        value, condition = pieces[0]
        if condition is sympy.true or len(pieces) == 1:
            return self.num(value)
        chosen = self.num(value)
        rest = self._piecewise(pieces[1:])
        return self.b.select(self.as_condition(self.emit(condition)), chosen, rest)

    # ----- graphc's scalar functions (graphc/ops/scalar.py) -----------------------------
    def _fn_sigmoid(self, x: ir.Value) -> ir.Value:
        b = self.b
        e = self.exp(b.fneg(self.intrinsic("fabs", x)))
        one = self.number(1)
        denominator = b.fadd(one, e)
        positive = b.fdiv(one, denominator)
        negative = b.fdiv(e, denominator)
        return b.select(self.compare(">=", x, self.number(0)), positive, negative)

    def _fn_relu(self, x: ir.Value) -> ir.Value:
        if self.float:  # NaN > 0 is "unordered", so NaN passes through
            return self.b.select(self.b.fcmp_unordered(">", x, self.number(0)), x,
                                 self.number(0))
        return self.b.select(self.compare(">", x, self.number(0)), x, self.number(0))

    def _fn_sign(self, x: ir.Value) -> ir.Value:
        b = self.b
        zero = self.number(0)
        rest = b.fmul(x, zero) if self.float else zero  # 0 stays 0, NaN stays NaN
        negative = b.select(self.compare("<", x, zero), self.number(-1), rest)
        return b.select(self.compare(">", x, zero), self.number(1), negative)

    def _fn_abs(self, x: ir.Value) -> ir.Value:
        if self.float:
            return self.intrinsic("fabs", x)
        if self.unsigned:
            return x
        negative = self.b.icmp_signed("<", x, self.number(0))
        return self.b.select(negative, self.b.neg(x), x)

    def _fn_maximum(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self._extremum(x, y, ">")

    def _fn_minimum(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self._extremum(x, y, "<")

    def _extremum(self, x: ir.Value, y: ir.Value, op: str) -> ir.Value:
        """NumPy's maximum/minimum: NaN in either operand gives NaN."""
        b = self.b
        if not self.float:
            return b.select(self.compare(op, x, y), x, y)
        pick = b.select(b.fcmp_ordered(op, x, y), x, y)
        return b.select(b.fcmp_unordered("uno", x, x), x, pick)

    def _fn_gelu(self, x: ir.Value) -> ir.Value:
        b = self.b
        erf = self.erf(b.fmul(x, self.number(math.sqrt(0.5))))  # no division
        return b.fmul(b.fmul(self.number(0.5), x), b.fadd(self.number(1), erf))

    def _fn_gelu_tanh(self, x: ir.Value) -> ir.Value:
        b = self.b
        cube = b.fmul(b.fmul(x, x), x)
        inner = b.fmul(self.number(math.sqrt(2 / math.pi)),
                       b.fadd(x, b.fmul(self.number(0.044715), cube)))
        t = self.tanh(inner)
        return b.fmul(b.fmul(self.number(0.5), x), b.fadd(self.number(1), t))

    def _fn_rounding(self, name: str, x: ir.Value) -> ir.Value:
        """floor, ceil, roundeven or trunc: instructions on floats; ints are unchanged."""
        return self.intrinsic(name, x) if self.float else x

    def _fn_test(self, name: str, x: ir.Value) -> ir.Value:
        """isnan, isinf or isfinite as i1 (ints: never NaN nor infinite)."""
        b = self.b
        if not self.float:
            return ir.Constant(I1, int(name == "isfinite"))
        if name == "isnan":
            return b.fcmp_unordered("uno", x, x)
        magnitude = self.intrinsic("fabs", x)
        return b.fcmp_ordered("==" if name == "isinf" else "<", magnitude,
                              self.number(math.inf))

    # ----- typed functions: division, remainder, bitwise, shifts (in their own dtype) -------
    def _fn_floor_divide(self, x: ir.Value, y: ir.Value) -> ir.Value:
        if self.float:
            return arith.float_floor_divmod(self, x, y)[0]
        return arith.int_divmod(self.b, self.dtype, x, y, floor=True)[0]

    def _fn_remainder(self, x: ir.Value, y: ir.Value) -> ir.Value:
        if self.float:
            return arith.float_floor_divmod(self, x, y)[1]
        return arith.int_divmod(self.b, self.dtype, x, y, floor=True)[1]

    def _fn_trunc_divide(self, x: ir.Value, y: ir.Value) -> ir.Value:
        if self.float:
            return self.intrinsic("trunc", self.b.fdiv(x, y))
        return arith.int_divmod(self.b, self.dtype, x, y, floor=False)[0]


def _typed(method):
    """The rule of a typed function: operands converted to its dtype, `method` of an
    emitter of that dtype, the value converted back (exact: the compute dtype holds the
    typed one, as NumPy's promotion of the kernel's dtypes does)."""

    def rule(e: ExpressionEmitter, expr) -> ir.Value:
        own = np.dtype(type(expr).dtype)
        args = [e.num(a) for a in expr.args]
        if own == e.dtype:
            return method(e, *args)
        inner = ExpressionEmitter(e.b, e.mc, own, {})
        value = method(inner, *(convert(e.b, a, e.dtype, own) for a in args))
        return convert(e.b, value, own, e.dtype)

    return rule


def _unary(method):
    return lambda e, expr: method(e, e.num(expr.args[0]))


def _binary(method):
    return lambda e, expr: method(e, e.num(expr.args[0]), e.num(expr.args[1]))


def _relation(op: str):
    return lambda e, expr: e.compare(op, e.num(expr.lhs), e.num(expr.rhs))


E = ExpressionEmitter
RULES = {
    # structure
    "add": E._add,
    "mul": E._mul,
    "pow": lambda e, expr: e._pow(*expr.args),
    "piecewise": lambda e, expr: e._piecewise(expr.args),
    # logic
    "logical_and": lambda e, expr: e._fold(e.b.and_, expr.args),
    "logical_or": lambda e, expr: e._fold(e.b.or_, expr.args),
    "logical_not": lambda e, expr: e.b.xor(e.as_condition(e.emit(expr.args[0])),
                                           ir.Constant(I1, 1)),
    **{name: _relation(op) for name, op in _RELATIONS.items()},
    # functions
    "exp": _unary(E.exp), "log": _unary(E.log), "tanh": _unary(E.tanh), "erf": _unary(E.erf),
    "sin": lambda e, expr: e.intrinsic("sin", e.num(expr.args[0])),
    "cos": lambda e, expr: e.intrinsic("cos", e.num(expr.args[0])),
    "sigmoid": _unary(E._fn_sigmoid), "relu": _unary(E._fn_relu), "sign": _unary(E._fn_sign),
    "abs": _unary(E._fn_abs), "gelu": _unary(E._fn_gelu), "gelu_tanh": _unary(E._fn_gelu_tanh),
    "maximum": _binary(E._fn_maximum), "minimum": _binary(E._fn_minimum),
    "log1p": _unary(E.log1p), "expm1": _unary(E.expm1), "sinh": _unary(E.sinh),
    "cosh": _unary(E.cosh), "atan": _unary(E.atan), "asin": _unary(E.asin),
    "acos": _unary(E.acos), "atan2": _binary(E.atan2),
    "tan": lambda e, expr: e.intrinsic("tan", e.num(expr.args[0])),
    "copysign": lambda e, expr: e.intrinsic("copysign", e.num(expr.args[0]),
                                            e.num(expr.args[1])),
    **{name: (lambda e, expr, f=function: e._fn_rounding(f, e.num(expr.args[0])))
       for name, function in [("floor", "floor"), ("ceil", "ceil"), ("round", "roundeven"),
                              ("trunc", "trunc")]},
    **{name: (lambda e, expr, n=name: e._fn_test(n, e.num(expr.args[0])))
       for name in ("isnan", "isinf", "isfinite")},
    "logical_xor": lambda e, expr: e._fold(e.b.xor, expr.args),
    # typed functions
    "floor_divide": _typed(E._fn_floor_divide), "remainder": _typed(E._fn_remainder),
    "trunc_divide": _typed(E._fn_trunc_divide),
    "bitwise_and": _typed(lambda e, x, y: e.b.and_(x, y)),
    "bitwise_or": _typed(lambda e, x, y: e.b.or_(x, y)),
    "bitwise_xor": _typed(lambda e, x, y: e.b.xor(x, y)),
    "bitwise_not": _typed(lambda e, x: e.b.xor(x, ir.Constant(x.type, -1))),
    "left_shift": _typed(lambda e, x, y: arith.shift(e.b, e.dtype, x, y, left=True)),
    "right_shift": _typed(lambda e, x, y: arith.shift(e.b, e.dtype, x, y, left=False)),
}
"""How each head of the scalar language (graphc/ops/scalar.py GRAMMAR) is emitted."""
