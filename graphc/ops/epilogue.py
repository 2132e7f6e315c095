"""Epilogue ops: a producer (matmul, conv2d: an op that declares `epilogue`) whose output
goes through an elementwise expression (bias add, activation, the relu mask of a backward
pass) in the same loop, before it is stored.

Format (an interface: the optimizer builds them, every backend lowers them):

- op name: the producer's `epilogue` (``"fused_matmul"``, ``"fused_conv2d"``).
- ``inputs``: the producer's operands first (matmul: ``a, b``; conv2d: ``x, w``), then the
  epilogue's extra operands ``e0, e1, ...``, any dtypes, each broadcasting (NumPy rules)
  to the producer's output shape.
- ``attrs["expr"]``: a sympy expression in the symbol ``acc`` (``ACC``, real), the
  producer's output element (computed in the producer's dtype), and ``x0, x1, ...`` for
  the extra operands in order; built from the same pieces, kept unevaluated and evaluated
  the same way as a ``"fused"`` node's expression (graphc/ops/fused.py).
- ``attrs["dtype"]``: the output dtype name. The output shape is the producer's.
- the producer's attributes named by its `epilogue_attrs` (conv2d's ``stride`` and
  ``padding``), with the same meaning.
"""

from __future__ import annotations

import numpy as np
import sympy

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, all_ops, get_op, register
from graphc.ops.fused import bool_dtype_of, float_dtype_of
from graphc.ops.scalar import check_expression, evaluate, expression_grads
from graphc.ops.scalar import input_symbols as extra_symbols
from graphc.shapes import broadcast, dims_equal, shape_str

ACC = sympy.Symbol("acc", real=True)


class Epilogue(Op):
    """A producer op with an elementwise epilogue (format in the module docstring)."""

    pattern = Pattern.OPAQUE
    fused = True

    def __init__(self, producer: Op):
        self.name = producer.epilogue
        self.producer = producer.name
        self.producer_attrs = producer.epilogue_attrs

    def split(self, node: Node) -> tuple[Node, tuple[Node, ...]]:
        """(the producer node, the extra operands)."""
        attrs = {k: node.attrs[k] for k in self.producer_attrs}
        return Node.make(self.producer, node.inputs[:2], **attrs), node.inputs[2:]

    def infer(self, inputs, attrs):
        if len(inputs) < 2:
            raise build_error(self.name, f"needs the {self.producer} operands, got "
                              f"{len(inputs)} inputs")
        attrs_of = {k: attrs[k] for k in self.producer_attrs}
        _, shape = get_op(self.producer).infer(inputs[:2], attrs_of)
        extras = inputs[2:]
        check_expression(self.name, attrs.get("expr"), (ACC, *extra_symbols(len(extras))))
        for k, e in enumerate(extras):
            try:
                ok = all(dims_equal(a, b) for a, b in zip(broadcast(e.shape, shape), shape))
            except ValueError:
                ok = False
            if not ok or e.ndim > len(shape):
                raise build_error(self.name, f"extra operand x{k} of shape {shape_str(e.shape)} "
                                  f"does not broadcast to the output {shape_str(shape)}")
        return dtypes.as_dtype(attrs["dtype"]), shape

    def numpy(self, node, args, env):
        producer, extras = self.split(node)
        acc = get_op(self.producer).numpy(producer, args[:2], env)
        values = {ACC: acc, **dict(zip(extra_symbols(len(extras)), args[2:]))}
        out = evaluate(node.attrs["expr"], values, float_dtype_of(node), bool_dtype_of(node))
        return np.broadcast_to(out.astype(node.dtype, copy=False), env.shape(node.shape))

    def grad(self, node, out_grad):
        producer, extras = self.split(node)
        symbols = (ACC, *extra_symbols(len(extras)))
        g_acc, *g_extras = expression_grads(node.attrs["expr"], symbols, (producer, *extras),
                                            node, out_grad)
        if g_acc is None:
            return [None, None, *g_extras]
        return [*get_op(self.producer).grad(producer, g_acc), *g_extras]


def register_all() -> None:
    """Register the epilogue op of every registered op that declares one (once every op
    module is imported: graphc/ops/__init__.py calls it)."""
    for producer in list(all_ops().values()):
        if producer.epilogue is not None and producer.epilogue not in all_ops():
            register(Epilogue(producer))
