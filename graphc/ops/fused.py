"""The fused elementwise op: one kernel computing a whole tree of elementwise ops.

Format (an interface: the optimizer builds it, every backend lowers it):

- op name ``"fused"``.
- ``inputs``: the distinct outside operands, any dtypes, any shapes that broadcast (NumPy
  rules) to the output shape.
- ``attrs["expr"]``: an expression of one output element in the scalar language
  (graphc/ops/scalar.py: its grammar, and what unevaluated means), in the symbols
  ``x0, x1, ...`` (``input_symbols(n)``), one per input, in order. Backends evaluate
  ``kernel_body(expr)`` (sympy.cse, still unevaluated): a tuple of (temporary,
  subexpression) assignments, then the result.
- ``attrs["dtype"]``: the output dtype name; the value is computed in the operands' dtypes
  (NumPy promotion, as the unfused ops did) and converted to it at the end.
- ``attrs["shape"]`` (optional): the output shape when it is not the broadcast of the
  input shapes (an absorbed broadcast_to made it bigger); absent otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, register_class
from graphc.ops.scalar import (
    bool_arithmetic_dtype,
    check_expression,
    evaluate,
    expression_grads,
    input_symbols,
)
from graphc.shapes import as_shape, broadcast, dims_equal, shape_str


def elementwise_shape(op: str, inputs: Sequence[Node], attrs: dict):
    """The broadcast of the input shapes, or attrs["shape"] if given (it must contain it)."""
    try:
        shape = broadcast(*(i.shape for i in inputs))
    except ValueError:
        raise build_error(op, f"input shapes {_shapes(inputs)} do not broadcast") from None
    if attrs.get("shape") is None:
        return shape
    target = as_shape(attrs["shape"])
    try:
        ok = all(dims_equal(a, b) for a, b in zip(broadcast(shape, target), target))
        ok = ok and len(target) >= len(shape)
    except ValueError:
        ok = False
    if not ok:
        raise build_error(op, f"input shapes {_shapes(inputs)} do not broadcast to "
                          f"{shape_str(target)}")
    return target


def _shapes(inputs: Sequence[Node]) -> str:
    """The input shapes as an error message lists them (printed only on an error: sympy
    prints a symbolic dim slowly)."""
    return ", ".join(shape_str(i.shape) for i in inputs)


@register_class
class Fused(Op):
    """A tree of elementwise ops as one kernel (format in the module docstring)."""

    name = "fused"
    pattern = Pattern.ELEMENTWISE
    fused = True

    def infer(self, inputs, attrs):
        check_expression(self.name, attrs.get("expr"), input_symbols(len(inputs)))
        return dtypes.as_dtype(attrs["dtype"]), elementwise_shape(self.name, inputs, attrs)

    def numpy(self, node, args, env):
        values = dict(zip(input_symbols(len(args)), args))
        out = evaluate(node.attrs["expr"], values, float_dtype_of(node), bool_dtype_of(node))
        return np.broadcast_to(out.astype(node.dtype, copy=False), env.shape(node.shape))

    def grad(self, node, out_grad):
        return expression_grads(node.attrs["expr"], input_symbols(len(node.inputs)),
                                node.inputs, node, out_grad)


def bool_dtype_of(node: Node) -> np.dtype:
    """The dtype bool operands take in `node`'s arithmetic (scalar.bool_arithmetic_dtype)."""
    return bool_arithmetic_dtype(node.dtype, [i.dtype for i in node.inputs])


def float_dtype_of(node: Node) -> np.dtype:
    """The float dtype numbers take in `node`'s expression: its own, else its inputs'."""
    floats = [d for d in (node.dtype, *(i.dtype for i in node.inputs)) if dtypes.is_float(d)]
    return floats[0] if floats else dtypes.FLOAT64
