"""The fused reduction op: an elementwise expression reduced over some axes, one kernel
(softmax's sum(exp(x - max)), layer norm's variance, a loss's mean).

Format (an interface: the optimizer builds it, every backend lowers it):

- op name ``"fused_reduce"``; ``inputs``, ``attrs["expr"]`` and the optional
  ``attrs["shape"]`` exactly as for ``"fused"`` (graphc/ops/fused.py): they define the
  elementwise value over the *iteration space*, the broadcast of the input shapes (or
  ``shape``).
- ``attrs["kind"]``: ``"sum"``, ``"mean"``, ``"prod"``, ``"max"`` or ``"min"``.
- ``attrs["axes"]``: sorted nonnegative axes of the iteration space to reduce over;
  ``attrs["keepdims"]``: as in NumPy.
- ``attrs["dtype"]``: the output dtype name. Each element of the expression is converted
  to it before it is accumulated (as the unfused reduction's NumPy rules do: a sum of
  int32 accumulates in int64, a mean of ints in float64).
"""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, Pattern, get_op, register_class
from graphc.ops.elementwise import cast
from graphc.ops.fused import bool_dtype_of, elementwise_shape, float_dtype_of
from graphc.ops.reduction import check_reducible, reduced_shape, reduction_grad
from graphc.ops.scalar import (
    check_expression,
    evaluate,
    expression_grads,
    input_symbols,
    to_graph,
)
from graphc.ops.shape import broadcast_to

KINDS = ("sum", "mean", "prod", "max", "min")


@register_class
class FusedReduce(Op):
    """An elementwise expression reduced over axes (format in the module docstring)."""

    name = "fused_reduce"
    pattern = Pattern.REDUCTION
    fused = True

    def infer(self, inputs, attrs):
        check_expression(self.name, attrs.get("expr"), input_symbols(len(inputs)))
        space = elementwise_shape(self.name, inputs, attrs)
        if attrs["kind"] not in KINDS:
            raise build_error(self.name, f"kind must be one of {KINDS}, got {attrs['kind']!r}")
        axes = attrs["axes"]
        if list(axes) != sorted(set(axes)) or any(not 0 <= a < len(space) for a in axes):
            raise build_error(self.name, f"axes {axes} are not sorted distinct axes of an "
                              f"iteration space of rank {len(space)}")
        return dtypes.as_dtype(attrs["dtype"]), reduced_shape(space, axes, attrs["keepdims"])

    def numpy(self, node, args, env):
        attrs = node.attrs
        values = dict(zip(input_symbols(len(args)), args))
        space = env.shape(self.space(node))
        check_reducible(attrs["kind"], space, attrs["axes"], node)
        elements = evaluate(attrs["expr"], values, float_dtype_of(node),
                            bool_dtype_of(node))
        elements = np.broadcast_to(elements.astype(node.dtype, copy=False), space)
        with np.errstate(all="ignore"):
            out = get_op(attrs["kind"]).reference(elements, axis=attrs["axes"],
                                                  keepdims=attrs["keepdims"])
        return np.asarray(out, dtype=node.dtype)

    @staticmethod
    def space(node):
        """The iteration space: the shape the expression is evaluated over."""
        return elementwise_shape("fused_reduce", node.inputs, node.attrs)

    def grad(self, node, out_grad):
        symbols = input_symbols(len(node.inputs))
        attrs = node.attrs
        elements = to_graph(attrs["expr"], dict(zip(symbols, node.inputs)), node.dtype)
        elements = broadcast_to(cast(elements, node.dtype), self.space(node))
        reduced = Node.make(attrs["kind"], (elements,), axes=attrs["axes"],
                                keepdims=attrs["keepdims"])
        (g,) = reduction_grad(reduced, out_grad)
        return expression_grads(attrs["expr"], symbols, node.inputs, elements, g)
