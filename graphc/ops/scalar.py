"""The scalar-expression language: one sympy expression of scalars per elementwise op, and
per fused kernel. From it come the op's gradient (sympy differentiates it), the fused
kernels (the passes compose expressions) and the code (each backend evaluates it).

The grammar is the table `GRAMMAR`: every head an expression may use, mapped to what it
means. A head that names an op ("exp", "greater", "sigmoid") means that elementwise op
applied to its arguments; the rest are structure: numbers, symbols, "add", "mul", "pow"
and "piecewise". Every interpreter dispatches from this table: the NumPy evaluator and
the graph builder here, the gradient (sympy.diff, with the derivative conventions
declared on the custom functions below) and the LLVM emitter
(graphc/backends/llvm/codegen/expr.py); tests/ops/test_scalar.py checks that every head
has every interpreter.

Expressions are kept unevaluated (built under `sympy.evaluate(False)`, Piecewise built
by `piecewise`), so they keep exactly the structure of the ops they replace: `x*0` and
`x - x` stay (NaN semantics), `a/b` is `Mul(a, Pow(b, -1))` and means a division,
`Pow(b, 1/2)` is sqrt. A bool is a number 0 or 1; `Ne(b, 0)` of a bool is its truth.
Numbers are weak, as Python scalars in NumPy: they take the dtype of the array they meet.

This module sits below the elementwise ops (graphc/ops/elementwise.py builds its
expressions from it), so the graph builder makes op nodes by name.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import sympy
from sympy import Function, Piecewise, S
from sympy.functions.elementary.piecewise import ExprCondPair

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import get_op
from graphc.ops.leaf import operands
from graphc.ops.shape import broadcast_to, unbroadcast


# ----- the functions sympy lacks ----------------------------------------------------------
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


class Gelu(Function):
    """x * Phi(x), the exact (erf) GELU."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        cdf = (1 + sympy.erf(x / sympy.sqrt(2))) / 2
        pdf = sympy.exp(-x**2 / 2) / sympy.sqrt(2 * sympy.pi)
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


# ----- the grammar --------------------------------------------------------------------------
STRUCTURE = ("number", "symbol", "add", "mul", "pow", "piecewise")

GRAMMAR: dict[type, str] = {
    sympy.Add: "add", sympy.Mul: "mul", sympy.Pow: "pow", sympy.Piecewise: "piecewise",
    # elementwise ops
    sympy.exp: "exp", sympy.log: "log", sympy.tanh: "tanh", sympy.erf: "erf",
    sympy.sin: "sin", sympy.cos: "cos", sympy.sign: "sign", sympy.Abs: "abs",
    Sigmoid: "sigmoid", Relu: "relu", Sign: "sign", AbsF: "abs", Gelu: "gelu",
    GeluTanh: "gelu_tanh", Maximum: "maximum", Minimum: "minimum",
    # relations (bool-valued ops)
    sympy.StrictGreaterThan: "greater", sympy.GreaterThan: "greater_equal",
    sympy.StrictLessThan: "less", sympy.LessThan: "less_equal",
    sympy.Equality: "equal", sympy.Unequality: "not_equal",
    # logic on truth values
    sympy.And: "logical_and", sympy.Or: "logical_or", sympy.Not: "logical_not",
}
"""sympy head -> its meaning: a structure name, or the elementwise op it applies."""

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
    unknown = expr.free_symbols - set(symbols)
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise build_error(op, f"expr uses {names}, which are not among its inputs "
                          f"({', '.join(map(str, symbols))})")


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


# ----- the NumPy evaluator ------------------------------------------------------------------
def evaluate(expr: sympy.Basic, values: dict[sympy.Symbol, np.ndarray],
             float_dtype: np.dtype, bool_as: np.dtype | None = None) -> np.ndarray:
    """The expression on arrays, op by op as the unfused ops compute it (each op by its
    NumPy reference). `float_dtype` types the float numbers of a Piecewise none of whose
    values is an array; `bool_as` (default: float_dtype) a bool value in arithmetic, that
    is a fused cast from bool (see bool_arithmetic_dtype)."""
    assignments, result = kernel_body(expr)
    env = dict(values)
    with np.errstate(all="ignore"):
        for temp, sub in assignments:
            env[temp] = Evaluator(env, float_dtype, bool_as).run(sub)
        return np.asarray(Evaluator(env, float_dtype, bool_as).run(result))


def bool_arithmetic_dtype(own: np.dtype, operands) -> np.dtype:
    """The dtype a bool operand is cast to where a fused kernel computes with it (a cast
    from bool is fused as the bool operand itself): the kernel's dtype when it is a number,
    else (a kernel giving bool, e.g. a comparison) its first float operand's, else int8,
    which takes the dtype of whatever it meets."""
    if own.kind in "iuf":
        return own
    return next((d for d in operands if dtypes.is_float(d)), np.dtype(np.int8))


_LEAF = object()  # Evaluator._leaf's answer for an expression with operands


class Evaluator:
    """Evaluates expressions over arrays, given the values of their symbols in `env`.
    Iterative, not recursive: a stack of the subexpressions being evaluated, each with
    the values of its operands so far (as a recursive walk would hold them), so no
    expression is too deep."""

    def __init__(self, env, float_dtype, bool_as=None):
        self.env = env
        self.float_dtype = float_dtype
        self.bool_as = float_dtype if bool_as is None else bool_as

    def run(self, expr):
        """The value: an array, or a weak Python scalar for a number without symbols."""
        value = self._leaf(expr)
        if value is not _LEAF:
            return _weak(expr, value)
        stack = [(expr, self._operands(expr), [])]
        while True:
            node, operands, values = stack[-1]
            if len(values) < len(operands):
                child = operands[len(values)]
                value = self._leaf(child)
                if value is _LEAF:
                    stack.append((child, self._operands(child), []))
                else:
                    values.append(_weak(child, value))
                continue
            stack.pop()
            value = _weak(node, self._combine(node, values))
            if not stack:
                return value
            stack[-1][2].append(value)

    def _leaf(self, expr):
        """The value of a bound symbol or a number, else _LEAF."""
        if expr in self.env:
            return self.env[expr]
        kind = head(expr)
        if kind == "number":
            if expr is sympy.true or expr is sympy.false:
                return bool(expr)
            return int(expr) if expr.is_Integer else float(expr)
        if kind == "symbol":
            raise KeyError(f"no value for the symbol {expr}")
        return _LEAF

    @staticmethod
    def _operands(expr) -> list:
        """The subexpressions whose values `_combine` takes, in evaluation order."""
        kind = head(expr)
        if kind == "mul":
            args = expr.args
            if len(args) == 2 and args[0] == -1:
                return [args[1]]
            return [f.base if _reciprocal(f) else f for f in args]
        if kind == "pow":
            base, exponent = expr.args
            return [base] if exponent == -1 or exponent == sympy.S.Half else [base, exponent]
        if kind == "piecewise":  # the values, then the conditions last to first
            pieces = expr.args
            return [v for v, _ in pieces] + [c for _, c in reversed(pieces[:-1])]
        return list(expr.args)

    def _combine(self, expr, values: list):
        """expr's value from its operands' values (`_operands`' order)."""
        kind = head(expr)
        if not (kind == "piecewise" or kind.startswith("logical_") or kind in _RELATIONS):
            values = [self._number(v) for v in values]
        if kind == "add":
            return functools.reduce(np.add, values)
        if kind == "mul":
            return self._mul(expr.args, values)
        if kind == "pow":
            if expr.exp == -1:
                return np.true_divide(1, values[0])
            if expr.exp == sympy.S.Half:
                return get_op("sqrt").reference(self._array(values[0]))
            return np.power(*values)
        if kind == "piecewise":
            return self._piecewise(len(expr.args), values)
        reference = get_op(kind).reference
        if kind.startswith("logical_") or kind in _RELATIONS:
            return functools.reduce(reference, values) if len(values) > 1 \
                else reference(*values)
        return reference(*map(self._array, values))

    def _number(self, value):
        """A bool array in arithmetic as 0/1 in `bool_as` (a fused cast from bool is its
        operand itself, which NumPy would add as a logical or, and refuses to negate)."""
        if isinstance(value, (np.ndarray, np.bool_)) and value.dtype == np.bool_:
            return value.astype(self.bool_as)
        return value

    def _array(self, value):
        return value if isinstance(value, np.ndarray) else np.asarray(value, self.float_dtype)

    @staticmethod
    def _mul(args, values):
        if len(args) == 2 and args[0] == -1:
            return np.negative(values[0])
        above = [v for f, v in zip(args, values) if not _reciprocal(f)]
        below = [v for f, v in zip(args, values) if _reciprocal(f)]
        out = functools.reduce(np.multiply, above) if above else 1
        return out if not below else np.true_divide(out, functools.reduce(np.multiply, below))

    def _piecewise(self, count: int, operands: list):
        """A Piecewise of `count` pieces from its values and its conditions (all but the
        last piece's, last to first)."""
        values, conditions = operands[:count], operands[count:]
        if not any(isinstance(v, np.ndarray) for v in values):
            if all(isinstance(v, int) and -128 <= v < 128 for v in values):
                values = [np.int8(v) for v in values]  # 0/1 bools: promote to nothing
            else:
                values = [np.asarray(v, self.float_dtype) for v in values]
        out = values[-1]
        for value, condition in zip(reversed(values[:-1]), conditions):
            out = np.where(condition, value, out)
        return out


def _reciprocal(factor: sympy.Basic) -> bool:
    return factor.is_Pow and factor.exp == -1


def _weak(expr: sympy.Basic, value):
    """A NumPy scalar computed from numbers alone as a Python scalar (weak, as in the
    graph); anything else as it is."""
    if isinstance(value, np.generic) and not expr.free_symbols:
        return value.item()
    return value


_RELATIONS = frozenset({"greater", "greater_equal", "less", "less_equal", "equal",
                        "not_equal"})


# ----- the graph builder --------------------------------------------------------------------
def to_graph(expr: sympy.Basic, env: dict[sympy.Basic, Node], dtype) -> Node:
    """The graph computing `expr`, with symbols (and any subexpression in `env`) bound to
    nodes and numbers as `dtype`."""
    return _Converter(env, dtype).convert(expr)


class _Converter:
    def __init__(self, env, dtype):
        self.env = env
        self.dtype = dtype
        self.memo: dict[sympy.Basic, Node] = {}

    def number(self, value) -> Node:
        (node,) = operands(float(value), reference=self.dtype)
        return node

    def convert(self, expr) -> Node:
        if expr in self.env:
            return self.env[expr]
        if expr in self.memo:
            return self.memo[expr]
        node = self.memo[expr] = self._convert(expr)
        return node

    def _convert(self, expr) -> Node:
        kind = head(expr)
        if kind == "number":
            # sympy left the reals (log(-2) has an imaginary part, 1/0 is zoo): a graph of
            # reals has no such value, and NaN says so (PyTorch: log(-2) = NaN).
            return self.number(float("nan") if expr in NOT_REAL else expr)
        if kind == "add":
            return self._add(expr)
        if kind == "mul":
            return self._mul(expr)
        if kind == "pow":
            return self._pow(*expr.args)
        if kind == "piecewise":
            return self._piecewise(expr.args)
        if kind == "symbol":
            raise KeyError(f"no graph value for the symbol {expr}")
        if kind.startswith("logical_"):
            args = [self._condition(a) for a in expr.args]
            if kind == "logical_not":
                return Node.make(kind, tuple(args))
            return functools.reduce(lambda a, b: Node.make(kind, (a, b)), args)
        return Node.make(kind, operands(*(self.convert(a) for a in expr.args)))

    def _add(self, expr) -> Node:
        positive, negative = [], []
        for term in expr.as_ordered_terms():
            coeff, _ = term.as_coeff_Mul()
            (negative if coeff.is_negative else positive).append(
                -term if coeff.is_negative else term)
        out = None
        for term in positive:
            node = self.convert(term)
            out = node if out is None else Node.make("add", (out, node))
        for term in negative:
            node = self.convert(term)
            out = Node.make("neg", (node,)) if out is None else Node.make("sub", (out, node))
        return out

    def _mul(self, expr) -> Node:
        coeff, _ = expr.as_coeff_Mul()
        if coeff.is_negative:
            return Node.make("neg", (self.convert(-expr),))
        numerator, denominator = [], []
        for factor in sympy.Mul.make_args(expr):
            base, exponent = factor.as_base_exp()
            if exponent.is_Number and exponent.is_negative:
                denominator.append(base ** -exponent)
            else:
                numerator.append(factor)
        out = self._product(numerator)
        if denominator:
            out = Node.make("div", (self.number(1) if out is None else out,
                                    self._product(denominator)))
        return out

    def _product(self, factors) -> Node | None:
        out = None
        for factor in factors:
            node = self.convert(factor)
            out = node if out is None else Node.make("mul", (out, node))
        return out

    def _pow(self, base, exponent) -> Node:
        b = self.convert(base)
        if exponent == 2:
            return Node.make("mul", (b, b))
        if exponent == sympy.S.Half:
            return Node.make("sqrt", (b,))
        if exponent == -1:
            return Node.make("div", (self.number(1), b))
        if exponent.is_Number and exponent.is_negative:
            return Node.make("div", (self.number(1), self._pow(base, -exponent)))
        return Node.make("pow", operands(b, self.convert(exponent)))

    def _piecewise(self, pieces) -> Node:
        out = None
        for value, condition in reversed(pieces):
            if out is None or condition == sympy.true:
                out = self.convert(value)
            else:
                out = Node.make("where", (self._condition(condition), *operands(
                    self.convert(value), out)))
        return out

    def _condition(self, condition) -> Node:
        # Ne(c, 0) of a bool value c is c itself (bools are 0/1 numbers in expressions).
        if isinstance(condition, sympy.Unequality) and condition.rhs == 0:
            lhs = self.convert(condition.lhs)
            if lhs.dtype == bool:
                return lhs
        return self.convert(condition)


# ----- the gradient -------------------------------------------------------------------------
def leaves_the_reals(expr: sympy.Basic) -> bool:
    """Whether sympy evaluated part of `expr` outside the real numbers (log of a negative
    number: I; 1/0 or log(0): zoo; 0 * oo: nan), where IEEE arithmetic on the graph gives a
    real, infinite or NaN value instead."""
    return expr.has(*NOT_REAL) or any(
        a.is_extended_real is False for a in expr.atoms(sympy.Number))


def _scalar_constant(node: Node):
    """The sympy number of a shape-() constant (so x**2 differentiates to 2*x), else None."""
    if node.op != "constant" or node.shape != ():
        return None
    value = node.value.item()
    return sympy.Integer(value) if isinstance(value, (int, bool)) else sympy.Float(value, 17)


def expression_grads(expr: sympy.Basic, symbols: Sequence[sympy.Symbol],
                     inputs: Sequence[Node], out: Node, out_grad: Node,
                     partials: Sequence[sympy.Basic] | None = None) -> list[Node | None]:
    """d expr / d input_i * out_grad as graph, for a node `out` computing `expr` with each
    symbol bound to its input, summed down to each input's shape; None for inputs that are
    not float or are constants. `partials`: the derivatives to use (an op's own rules),
    else sympy's. Scalar constants among the inputs are substituted as numbers first (x**2
    differentiates to 2*x), unless that takes a partial outside the reals: then the graph
    computes it in IEEE arithmetic (NaN for log(-2), inf for 1/0)."""
    if partials is None:
        partials = [sympy.diff(expr, s) for s in symbols]
    numbers = {s: n for s, i in zip(symbols, inputs) if (n := _scalar_constant(i)) is not None}
    grads: list[Node | None] = []
    for x, partial in zip(inputs, partials):
        if not dtypes.is_float(x.dtype) or x.op == "constant":
            grads.append(None)
            continue
        substituted = partial.subs(numbers) if numbers else partial
        if numbers and not leaves_the_reals(substituted):
            partial, forward = substituted, expr.subs(numbers)
            bound = {s: i for s, i in zip(symbols, inputs) if s not in numbers}
        else:  # keep every input a graph value
            forward, bound = expr, dict(zip(symbols, inputs))
        if partial == 0:
            g = out_grad * 0.0
        elif partial == 1:
            g = out_grad
        elif partial == -1:
            g = -out_grad
        else:
            g = out_grad * to_graph(partial, {**bound, forward: out}, out.dtype)
        if g.shape != out.shape:
            g = broadcast_to(g, out.shape)
        grads.append(unbroadcast(g, x.shape) if g.shape != x.shape else g)
    return grads
