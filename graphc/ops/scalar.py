"""The scalar-expression language: one sympy expression of scalars per elementwise op, and
per fused kernel. From it come the op's gradient (sympy differentiates it), the fused
kernels (the passes compose expressions) and the code (each backend evaluates it).

The grammar is the table `GRAMMAR` (graphc/ops/scalar_language.py): every head an
expression may use, mapped to what it means. A head that names an op ("exp", "greater",
"sigmoid") means that elementwise op applied to its arguments; the rest are structure:
numbers, symbols, "add", "mul", "pow" and "piecewise". Every interpreter dispatches from
this table: the NumPy evaluator (graphc/ops/scalar_numpy.py), the graph builder here, the
gradient (sympy.diff, with the derivative conventions declared on the functions of
graphc/ops/scalar_functions.py) and the LLVM emitter (graphc/backends/llvm/codegen/expr.py);
tests/ops/test_scalar.py checks that every head has every interpreter.

Expressions are kept unevaluated (built under `sympy.evaluate(False)`, Piecewise built
by `piecewise`), so they keep exactly the structure of the ops they replace: `x*0` and
`x - x` stay (NaN semantics), `a/b` is `Mul(a, Pow(b, -1))` and means a division,
`Pow(b, 1/2)` is sqrt and `Pow(b, -1/2)` its reciprocal. A bool is a number 0 or 1;
`Ne(b, 0)` of a bool is its truth. Numbers are weak, as Python scalars in NumPy: they take
the dtype of the array they meet. A typed function (FloorDivide_int32, BitwiseAnd_uint8)
computes in its own dtype, whatever the kernel around it computes in.

This module sits below the elementwise ops (graphc/ops/elementwise.py builds its
expressions from it), so the graph builder makes op nodes by name. It gathers the
language's parts: import the names from here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import sympy

from graphc import dtypes
from graphc.ir.node import Node
from graphc.ops.leaf import operands
from graphc.ops.scalar_functions import (  # noqa: F401 (the language's names, gathered)
    AbsF,
    Ceil,
    CopySign,
    Expm1,
    Floor,
    Gelu,
    GeluTanh,
    IsFinite,
    IsInf,
    IsNan,
    Log1p,
    Maximum,
    Minimum,
    Relu,
    RoundEven,
    Sigmoid,
    Sign,
    Trunc,
    TypedFunction,
    piecewise,
    typed,
    typed_classes,
)
from graphc.ops.scalar_language import (  # noqa: F401
    GRAMMAR,
    NOT_REAL,
    RELATIONS,
    STRUCTURE,
    check_expression,
    head,
    inline_reciprocals,
    input_symbols,
    kernel_body,
)
from graphc.ops.scalar_numpy import Evaluator, bool_arithmetic_dtype, evaluate  # noqa: F401
from graphc.ops.shape import broadcast_to, unbroadcast


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
        if isinstance(expr, TypedFunction):
            own = type(expr).dtype
            args = [self.value(a) for a in expr.args]
            args = [a if a.dtype == own else Node.make("cast", (a,), dtype=own.name)
                    for a in args]
            return Node.make(kind, tuple(args), dtype=own.name)
        return Node.make(kind, operands(*(self.value(a) for a in expr.args)))

    def value(self, expr) -> Node:
        """expr's node as a number: a bool (a comparison, an indicator) as 0 or 1 of the
        graph's dtype."""
        node = self.convert(expr)
        if node.dtype == dtypes.BOOL:
            return Node.make("cast", (node,), dtype=dtypes.as_dtype(self.dtype).name)
        return node

    def _add(self, expr) -> Node:
        positive, negative = [], []
        for term in expr.as_ordered_terms():
            coeff, _ = term.as_coeff_Mul()
            (negative if coeff.is_negative else positive).append(
                -term if coeff.is_negative else term)
        out = None
        for term in positive:
            node = self.value(term)
            out = node if out is None else Node.make("add", (out, node))
        for term in negative:
            node = self.value(term)
            out = Node.make("neg", (node,)) if out is None else Node.make("sub", (out, node))
        return out

    def _mul(self, expr) -> Node:
        coeff, _ = expr.as_coeff_Mul()
        if coeff.is_negative:
            return Node.make("neg", (self.value(-expr),))
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
            node = self.value(factor)
            out = node if out is None else Node.make("mul", (out, node))
        return out

    def _pow(self, base, exponent) -> Node:
        b = self.value(base)
        if exponent == 2:
            return Node.make("mul", (b, b))
        if exponent == sympy.S.Half:
            return Node.make("sqrt", (b,))
        if exponent == -1:
            return Node.make("div", (self.number(1), b))
        if exponent.is_Number and exponent.is_negative:
            return Node.make("div", (self.number(1), self._pow(base, -exponent)))
        return Node.make("pow", operands(b, self.value(exponent)))

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
