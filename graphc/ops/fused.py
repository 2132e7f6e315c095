"""The fused elementwise op: one kernel computing a whole tree of elementwise ops.

Format (an interface: the optimizer builds it, every backend lowers it):

- op name ``"fused"``.
- ``inputs``: the distinct outside operands, any dtypes, any shapes that broadcast (NumPy
  rules) to the output shape.
- ``attrs["expr"]``: a sympy expression of one output element in the symbols
  ``x0, x1, ...`` (``input_symbols(n)``: ``sympy.Symbol(f"x{i}", real=True)``, one per
  input, in order). It is built only from numbers, Add, Mul, Pow, exp, log, tanh, erf,
  sin, cos, sign, Abs, Piecewise, relationals (>, >=, <, <=, Eq, Ne), And/Or/Not and the
  functions of graphc/ops/scalar.py (Sigmoid, Relu, Gelu, ... with the elementwise ops'
  semantics). The expression is kept *unevaluated* (built under ``sympy.evaluate(False)``)
  so it has exactly the structure of the ops it replaces: ``x*0`` and ``x - x`` stay (NaN
  semantics), ``a/b`` is ``Mul(a, Pow(b, -1))`` and means a division, ``Pow(b, 1/2)`` is
  sqrt. Backends evaluate ``kernel_body(expr)`` (sympy.cse, still unevaluated): a tuple of
  (temporary, subexpression) assignments, then the result.
- A bool value is a number 0 or 1 inside the expression (``Piecewise((1, rel), (0,
  True))``); ``Ne(b, 0)`` of a bool input is its truth.
- Numbers are weak, as Python scalars in NumPy: they take the dtype of the array they meet.
- ``attrs["dtype"]``: the output dtype name; the value is computed in the operands' dtypes
  (NumPy promotion, as the unfused ops did) and converted to it at the end.
- ``attrs["shape"]`` (optional): the output shape when it is not the broadcast of the
  input shapes (an absorbed broadcast_to made it bigger); absent otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import sympy

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops import scalar
from graphc.ops.registry import Op, get_op, register_class
from graphc.shapes import as_shape, broadcast, dims_equal, shape_str

_FUNCTION_OPS = {sympy.exp: "exp", sympy.log: "log", sympy.tanh: "tanh", sympy.erf: "erf",
                 sympy.sin: "sin", sympy.cos: "cos", sympy.sign: "sign", sympy.Abs: "abs",
                 **{fn: fn.op_name for fn in scalar.CUSTOM_FUNCTIONS}}
_RELATIONS = {sympy.StrictGreaterThan: np.greater, sympy.GreaterThan: np.greater_equal,
              sympy.StrictLessThan: np.less, sympy.LessThan: np.less_equal,
              sympy.Equality: np.equal, sympy.Unequality: np.not_equal}
_LOGIC = {sympy.And: np.logical_and, sympy.Or: np.logical_or}


@functools.cache
def input_symbols(n: int) -> tuple[sympy.Symbol, ...]:
    """The symbols x0 .. x{n-1} that stand for a fused node's inputs."""
    return tuple(sympy.Symbol(f"x{i}", real=True) for i in range(n))


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


def evaluate(expr: sympy.Basic, values: dict[sympy.Symbol, np.ndarray],
             float_dtype: np.dtype) -> np.ndarray:
    """The expression on arrays, op by op as the unfused ops compute it (each function by
    its elementwise op's NumPy reference). `float_dtype` types the float numbers of a
    Piecewise none of whose values is an array."""
    assignments, result = kernel_body(expr)
    env = dict(values)
    with np.errstate(all="ignore"):
        for temp, sub in assignments:
            env[temp] = _Evaluator(env, float_dtype).run(sub)
        return np.asarray(_Evaluator(env, float_dtype).run(result))


_LEAF = object()  # _Evaluator._leaf's answer for an expression with operands


class _Evaluator:
    """Evaluates an expression on arrays (see `evaluate`). Iterative, not recursive: a
    stack of the subexpressions being evaluated, each with the values of its operands so
    far (as a recursive walk would hold them), so no expression is too deep."""

    def __init__(self, env, float_dtype):
        self.env = env
        self.float_dtype = float_dtype

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
        if expr.is_Integer:
            return int(expr)
        if expr.is_Number or expr.is_NumberSymbol:
            return float(expr)
        if expr is sympy.true or expr is sympy.false:
            return bool(expr)
        return _LEAF

    @staticmethod
    def _operands(expr) -> list:
        """The subexpressions whose values `_combine` takes, in evaluation order."""
        if expr.is_Mul:
            args = expr.args
            if len(args) == 2 and args[0] == -1:
                return [args[1]]
            return [f.base if _reciprocal(f) else f for f in args]
        if expr.is_Pow:
            base, exponent = expr.args
            return [base] if exponent == -1 or exponent == sympy.S.Half else [base, exponent]
        if isinstance(expr, sympy.Piecewise):  # the values, then conditions last to first
            pieces = expr.args
            return [v for v, _ in pieces] + [c for _, c in reversed(pieces[:-1])]
        if type(expr) in _RELATIONS:
            return [expr.lhs, expr.rhs]
        if (expr.is_Add or type(expr) in _LOGIC or isinstance(expr, sympy.Not)
                or expr.func in _FUNCTION_OPS):
            return list(expr.args)
        raise NotImplementedError(f"fused: cannot evaluate {expr.func.__name__} ({expr})")

    def _combine(self, expr, values: list):
        """expr's value from its operands' values (`_operands`' order)."""
        if expr.is_Add:
            return functools.reduce(np.add, values)
        if expr.is_Mul:
            return self._mul(expr.args, values)
        if expr.is_Pow:
            if expr.exp == -1:
                return np.true_divide(1, values[0])
            if expr.exp == sympy.S.Half:
                return get_op("sqrt").reference(self._array(values[0]))
            return np.power(*values)
        if isinstance(expr, sympy.Piecewise):
            return self._piecewise(len(expr.args), values)
        if type(expr) in _RELATIONS:
            return _RELATIONS[type(expr)](*values)
        if type(expr) in _LOGIC:
            return functools.reduce(_LOGIC[type(expr)], values)
        if isinstance(expr, sympy.Not):
            return np.logical_not(values[0])
        return get_op(_FUNCTION_OPS[expr.func]).reference(*map(self._array, values))

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


def expression_grads(expr: sympy.Basic, symbols: Sequence[sympy.Symbol],
                     operands: Sequence[Node], out: Node, out_grad: Node) -> list[Node | None]:
    """d expr / d operand_i * out_grad, as graph, for a node `out` computing `expr` with
    each symbol bound to its operand; summed down to each operand's shape. None for
    operands that are not float."""
    from graphc import dsl
    from graphc.autodiff.broadcast import unbroadcast
    from graphc.autodiff.sympy_graph import to_graph

    env = dict(zip(symbols, operands))
    grads: list[Node | None] = []
    for symbol, x in zip(symbols, operands):
        if not dtypes.is_float(x.dtype):
            grads.append(None)
            continue
        partial = sympy.diff(expr, symbol)
        if partial == 0:
            g = out_grad * 0.0
        elif partial == 1:
            g = out_grad
        else:
            g = out_grad * to_graph(partial, {**env, expr: out}, out.dtype)
        if g.shape != out.shape:
            g = dsl.broadcast_to(g, out.shape)
        grads.append(unbroadcast(g, x.shape) if g.shape != x.shape else g)
    return grads


def check_expression(op: str, expr, symbols: Sequence[sympy.Symbol]) -> None:
    """Refuse an `expr` attribute that is not a sympy expression of the given symbols."""
    if not isinstance(expr, sympy.Basic):
        raise build_error(op, f"expr must be a sympy expression, got {type(expr).__name__}")
    unknown = expr.free_symbols - set(symbols)
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise build_error(op, f"expr uses {names}, which are not among its inputs "
                          f"({', '.join(map(str, symbols))})")


def elementwise_shape(op: str, inputs: Sequence[Node], attrs: dict):
    """The broadcast of the input shapes, or attrs["shape"] if given (it must contain it)."""
    shapes = ", ".join(shape_str(i.shape) for i in inputs)
    try:
        shape = broadcast(*(i.shape for i in inputs))
    except ValueError:
        raise build_error(op, f"input shapes {shapes} do not broadcast") from None
    if attrs.get("shape") is None:
        return shape
    target = as_shape(attrs["shape"])
    try:
        ok = all(dims_equal(a, b) for a, b in zip(broadcast(shape, target), target))
        ok = ok and len(target) >= len(shape)
    except ValueError:
        ok = False
    if not ok:
        raise build_error(op, f"input shapes {shapes} do not broadcast to {shape_str(target)}")
    return target


@register_class
class Fused(Op):
    """A tree of elementwise ops as one kernel (format in the module docstring)."""

    name = "fused"

    def infer(self, inputs, attrs):
        check_expression(self.name, attrs.get("expr"), input_symbols(len(inputs)))
        return dtypes.as_dtype(attrs["dtype"]), elementwise_shape(self.name, inputs, attrs)

    def numpy(self, node, args, env):
        values = dict(zip(input_symbols(len(args)), args))
        out = evaluate(node.attrs["expr"], values, float_dtype_of(node))
        return np.broadcast_to(out.astype(node.dtype, copy=False), env.shape(node.shape))

    def grad(self, node, out_grad):
        return expression_grads(node.attrs["expr"], input_symbols(len(node.inputs)),
                                node.inputs, node, out_grad)


def float_dtype_of(node: Node) -> np.dtype:
    """The float dtype numbers take in `node`'s expression: its own, else its inputs'."""
    floats = [d for d in (node.dtype, *(i.dtype for i in node.inputs)) if dtypes.is_float(d)]
    return floats[0] if floats else dtypes.FLOAT64
