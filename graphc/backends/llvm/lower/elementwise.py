"""Elementwise ops and plain copies: one broadcasting loop nest whose body is the op's
sympy expression, emitted by the expression emitter."""

from __future__ import annotations

import numpy as np
import sympy

from graphc import dtypes
from graphc.backends.llvm.expr import ExpressionEmitter
from graphc.backends.llvm.irtypes import I1, const, convert
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.nest import broadcast_strides, contiguous_strides, strided_nest
from graphc.ops.elementwise import Elementwise
from graphc.ops.registry import all_ops, get_op

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


def emit_expression(k, expr: sympy.Basic, symbols, dtype: np.dtype, out, ins) -> None:
    """out = expr(ins) elementwise with NumPy broadcasting, computed in `dtype`.
    Scalar constant inputs are folded into the code."""
    if dtype.kind != "f" and any(a.is_Float for a in expr.atoms(sympy.Number)):
        dtype = dtypes.FLOAT64  # an int op with a float coefficient (leaky_relu of ints)
    loaded = [i for i in ins if not (i.constant is not None and i.size == 1)]
    strides = [contiguous_strides(out.shape)] + [broadcast_strides(i.shape, out.shape)
                                                  for i in loaded]

    def body(offsets):
        env = {}
        for sym, i in zip(symbols, ins):
            if i.constant is not None and i.size == 1:
                env[sym] = const(dtype, i.constant.reshape(()).item())
        for sym, i, offset in zip((s for s, i in zip(symbols, ins) if i in loaded), loaded,
                                  offsets[1:]):
            env[sym] = convert(k.b, k.load(i.ptr, i.dtype, offset), i.dtype, dtype)
        emitter = ExpressionEmitter(k.b, k.mc, dtype, env)
        value = emitter.emit(expr)
        if value.type == I1:
            value = emitter.as_number(value)
        k.store(convert(k.b, value, dtype, out.dtype), out.ptr, out.dtype, offsets[0])

    strided_nest(k, out.shape, strides, body)


def _emit_elementwise(k, node, out, ins, scratch) -> None:
    op: Elementwise = get_op(node.op)
    symbols = sympy.symbols(f"x0:{len(ins)}")
    expr = op.expression(symbols, dict(node.attrs))
    emit_expression(k, sympy.sympify(expr), symbols, compute_dtype(node, op.dtype_rule), out, ins)


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
