"""Elementwise ops and plain copies: one broadcasting loop nest whose body is the op's
sympy expression, emitted by the expression emitter."""

from __future__ import annotations

import numpy as np
import sympy

from graphc import dtypes
from graphc.backends.llvm.codegen.expr import ExpressionEmitter
from graphc.backends.llvm.codegen.irtypes import I1, const, convert
from graphc.backends.llvm.codegen.nest import (
    broadcast_strides,
    collapse,
    streamed_loop,
    streams,
    strided_nest,
)
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.schedule.views import contiguous_strides
from graphc.ir.op import all_ops, get_op
from graphc.ops.elementwise import Elementwise

_WORKING_INT = np.dtype("int32")


def compute_dtype(node, rule: str) -> np.dtype:
    """The dtype an elementwise node computes in before the result is stored as node.dtype."""
    kinds = [i.dtype for i in node.inputs]
    if rule == "compare":
        dtype = dtypes.promote(*kinds)
    elif rule == "cast":
        dtype = kinds[0]
    elif rule == "logical":
        dtype = _WORKING_INT
    else:
        dtype = node.dtype
    return _WORKING_INT if dtype == dtypes.BOOL else np.dtype(dtype)


def working_dtype(dtype: np.dtype, expr: sympy.Basic) -> np.dtype:
    """dtype, or float64 when an int computation meets a float coefficient (leaky_relu of
    ints), as NumPy promotes it."""
    if dtype.kind != "f" and any(a.is_Float for a in expr.atoms(sympy.Number)):
        return dtypes.FLOAT64
    return dtype


def expression_value(k, body, dtype: np.dtype, env: dict):
    """The value (a number of `dtype`) of body = (assignments, result) over env."""
    assignments, result = body
    emitter = ExpressionEmitter(k.b, k.mc, dtype, env)
    for temp, sub in assignments:
        emitter.memo[temp] = emitter.emit(sub)
    value = emitter.emit(result)
    return emitter.as_number(value) if value.type == I1 else value


def operand_env(k, symbols, ins, offsets, dtype: np.dtype) -> dict:
    """symbol -> value of each operand as `dtype`; scalar constants are folded in (they
    have no offset)."""
    env, loaded = {}, iter(offsets)
    for sym, i in zip(symbols, ins):
        if i.constant is not None and i.size == 1:
            env[sym] = const(dtype, i.constant.reshape(()).item())
        else:
            env[sym] = convert(k.b, k.load(i.ptr, i.dtype, next(loaded)), i.dtype, dtype)
    return env


def loaded(ins) -> list:
    """The operands read from memory (not folded scalar constants)."""
    return [i for i in ins if not (i.constant is not None and i.size == 1)]


def emit_expression(k, body, symbols, dtype: np.dtype, out, ins) -> None:
    """out = body(ins) elementwise with NumPy broadcasting, computed in `dtype`."""
    dtype = working_dtype(dtype, body[1])
    strides = [contiguous_strides(out.shape)] + [broadcast_strides(i.shape, out.shape)
                                                  for i in loaded(ins)]

    def value_at(offsets):
        value = expression_value(k, body, dtype, operand_env(k, symbols, ins, offsets[1:], dtype))
        return convert(k.b, value, dtype, out.dtype)

    if streams(out.shape, strides, out.dtype):
        stride = [t[-1] for t in collapse(out.shape, strides)[1]]
        streamed_loop(k, out.size, stride, value_at, out.ptr, out.dtype)
        return
    strided_nest(k, out.shape, strides,
                 lambda offsets: k.store(value_at(offsets), out.ptr, out.dtype, offsets[0]))


def _emit_elementwise(k, node, out, ins, scratch) -> None:
    op: Elementwise = get_op(node.op)
    symbols = sympy.symbols(f"x0:{len(ins)}")
    expr = op.expression(symbols, dict(node.attrs))
    emit_expression(k, ([], sympy.sympify(expr)), symbols, compute_dtype(node, op.dtype_rule),
                    out, ins)


for _name, _op in sorted(all_ops().items()):
    if isinstance(_op, Elementwise):
        lowering(_name, inplace=True)(_emit_elementwise)


@lowering("copy", inplace=True)
def emit_copy(k, node, out, ins, scratch) -> None:
    """out = in, both contiguous (results into output arrays and params)."""
    (src,) = ins

    def body(offsets):
        value = k.load(src.ptr, src.dtype, offsets[1])
        k.store(convert(k.b, value, src.dtype, out.dtype), out.ptr, out.dtype, offsets[0])

    strided_nest(k, (out.size,), [[1], [1]], body)
