"""Turning a sympy expression of scalars back into graph: how derivative expressions of
elementwise ops (and fused kernels) become ordinary nodes."""

from __future__ import annotations

import functools

import sympy

from graphc import dsl
from graphc.ir.node import Node
from graphc.ops import scalar

_FUNCTIONS = {
    sympy.exp: dsl.exp, sympy.log: dsl.log, sympy.tanh: dsl.tanh, sympy.erf: dsl.erf,
    sympy.sin: dsl.sin, sympy.cos: dsl.cos, sympy.sign: dsl.sign, sympy.Abs: dsl.abs,
}
_CUSTOM = {fn: fn.op_name for fn in scalar.CUSTOM_FUNCTIONS}
_RELATIONS = {
    sympy.StrictGreaterThan: dsl.greater, sympy.GreaterThan: dsl.greater_equal,
    sympy.StrictLessThan: dsl.less, sympy.LessThan: dsl.less_equal,
    sympy.Equality: dsl.equal, sympy.Unequality: dsl.not_equal,
}

_NOT_REAL = (sympy.I, sympy.zoo, sympy.nan)  # singletons

_LOGIC = {sympy.And: dsl.logical_and, sympy.Or: dsl.logical_or, sympy.Not: dsl.logical_not}


def to_graph(expr: sympy.Basic, env: dict[sympy.Symbol, Node], dtype) -> Node:
    """The graph computing `expr`, with symbols bound to nodes and numbers as `dtype`."""
    return _Converter(env, dtype).convert(expr)


class _Converter:
    def __init__(self, env, dtype):
        self.env = env
        self.dtype = dtype
        self.memo: dict[sympy.Basic, Node] = {}

    def number(self, value) -> Node:
        (node,) = dsl.operands(float(value), reference=self.dtype)
        return node

    def convert(self, expr) -> Node:
        if expr in self.env:
            return self.env[expr]
        if expr in self.memo:
            return self.memo[expr]
        node = self.memo[expr] = self._convert(expr)
        return node

    def _convert(self, expr) -> Node:
        if any(expr is c for c in _NOT_REAL):
            # sympy left the reals (log(-2) has an imaginary part, 1/0 is zoo): a graph of
            # reals has no such value, and NaN says so (PyTorch: log(-2) = NaN).
            return self.number(float("nan"))
        if expr.is_Number or expr.is_NumberSymbol:
            return self.number(expr)
        if expr.is_Add:
            return self._add(expr)
        if expr.is_Mul:
            return self._mul(expr)
        if expr.is_Pow:
            return self._pow(*expr.args)
        if isinstance(expr, sympy.Piecewise):
            return self._piecewise(expr.args)
        if type(expr) in _RELATIONS:
            return self._relation(expr)
        if type(expr) in _LOGIC:
            args = [self._condition(a) for a in expr.args]
            return functools.reduce(_LOGIC[type(expr)], args) if len(args) > 1 \
                else _LOGIC[type(expr)](args[0])
        if expr.func in _FUNCTIONS:
            return _FUNCTIONS[expr.func](*(self.convert(a) for a in expr.args))
        if expr.func in _CUSTOM:
            args = tuple(self.convert(a) for a in expr.args)
            return Node.make(_CUSTOM[expr.func], dsl.operands(*args))
        raise NotImplementedError(f"cannot turn {expr.func.__name__} ({expr}) into graph")

    def _add(self, expr) -> Node:
        positive, negative = [], []
        for term in expr.as_ordered_terms():
            coeff, rest = term.as_coeff_Mul()
            (negative if coeff.is_negative else positive).append(term if not coeff.is_negative
                                                                 else -term)
        out = None
        for term in positive:
            node = self.convert(term)
            out = node if out is None else dsl.add(out, node)
        for term in negative:
            node = self.convert(term)
            out = dsl.neg(node) if out is None else dsl.sub(out, node)
        return out

    def _mul(self, expr) -> Node:
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_negative:
            return dsl.neg(self.convert(-expr))
        numerator, denominator = [], []
        for factor in sympy.Mul.make_args(expr):
            base, exponent = factor.as_base_exp()
            if exponent.is_Number and exponent.is_negative:
                denominator.append(base ** -exponent)
            else:
                numerator.append(factor)
        out = None
        for factor in numerator:
            node = self.convert(factor)
            out = node if out is None else dsl.mul(out, node)
        if denominator:
            below = None
            for factor in denominator:
                node = self.convert(factor)
                below = node if below is None else dsl.mul(below, node)
            out = dsl.div(self.number(1) if out is None else out, below)
        return out

    def _pow(self, base, exponent) -> Node:
        b = self.convert(base)
        if exponent == 2:
            return dsl.mul(b, b)
        if exponent == sympy.S.Half:
            return dsl.sqrt(b)
        if exponent == -1:
            return dsl.div(self.number(1), b)
        if exponent.is_Number and exponent.is_negative:
            return dsl.div(self.number(1), self._pow(base, -exponent))
        return dsl.pow(b, self.convert(exponent))

    def _piecewise(self, pieces) -> Node:
        value, condition = pieces[0]
        if condition == sympy.true or len(pieces) == 1:
            return self.convert(value)
        return dsl.where(self._condition(condition), self.convert(value),
                         self._piecewise(pieces[1:]))

    def _condition(self, condition) -> Node:
        # Ne(c, 0) of a bool value c is c itself (bools are 0/1 numbers in expressions).
        if isinstance(condition, sympy.Unequality) and condition.rhs == 0:
            lhs = self.convert(condition.lhs)
            if lhs.dtype == bool:
                return lhs
        return self.convert(condition)

    def _relation(self, expr) -> Node:
        a, b = self.convert(expr.lhs), self.convert(expr.rhs)
        return _RELATIONS[type(expr)](a, b)
