"""The scalar-expression language's NumPy evaluator (graphc/ops/scalar.py tells the whole
story): an expression over arrays, op by op as the unfused ops compute it, each by its
op's NumPy reference; the reference backend's fused kernels."""

from __future__ import annotations

import functools

import numpy as np
import sympy

from graphc import dtypes
from graphc.ir.op import get_op
from graphc.ops.scalar_functions import TypedFunction
from graphc.ops.scalar_language import RELATIONS, head, kernel_body


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
            return [base] if exponent in _ROOTS_AND_RECIPROCAL else [base, exponent]
        if kind == "piecewise":  # the values, then the conditions last to first
            pieces = expr.args
            return [v for v, _ in pieces] + [c for _, c in reversed(pieces[:-1])]
        return list(expr.args)

    def _combine(self, expr, values: list):
        """expr's value from its operands' values (`_operands`' order)."""
        kind = head(expr)
        if not (kind == "piecewise" or kind.startswith("logical_") or kind in RELATIONS):
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
            if expr.exp == -sympy.S.Half:  # rsqrt: a division by the square root
                return np.true_divide(1, get_op("sqrt").reference(self._array(values[0])))
            return np.power(*values)
        if kind == "piecewise":
            return self._piecewise(len(expr.args), values)
        reference = get_op(kind).reference
        if kind.startswith("logical_") or kind in RELATIONS:
            return functools.reduce(reference, values) if len(values) > 1 \
                else reference(*values)
        if isinstance(expr, TypedFunction):  # in its own dtype, whatever the values'
            own = type(expr).dtype
            return reference(*(np.asarray(v).astype(own, copy=False) for v in values))
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


_ROOTS_AND_RECIPROCAL = (sympy.S.NegativeOne, sympy.S.Half, -sympy.S.Half)


def _reciprocal(factor: sympy.Basic) -> bool:
    return factor.is_Pow and factor.exp == -1


def _weak(expr: sympy.Basic, value):
    """A NumPy scalar computed from numbers alone as a Python scalar (weak, as in the
    graph); anything else as it is."""
    if isinstance(value, np.generic) and not expr.free_symbols:
        return value.item()
    return value




