"""Fused kernels written back as the primitive ops they compute: a "fused" (or
"fused_group") expression becomes the elementwise ops of its scalar expression, an
epilogue op its producer (matmul, conv) followed by them, a "fused_reduce" the elementwise
ops and then its reduction. What comes out is built of ops every ONNX runtime has."""

from __future__ import annotations

from collections.abc import Sequence

from graphc.ir.graph import topological_order
from graphc.ir.node import Node
from graphc.ir.op import get_op
from graphc.ops.elementwise import cast
from graphc.ops.epilogue import ACC, Epilogue
from graphc.ops.fused import elementwise_shape, float_dtype_of
from graphc.ops.fused_group import output_float_dtype, output_symbols
from graphc.ops.scalar import input_symbols, to_graph
from graphc.ops.shape import broadcast_to


def _expression(expr, env: dict, number_dtype, dtype, shape) -> Node:
    """The graph of one scalar expression over env's values, as `dtype`, of `shape`."""
    out = cast(to_graph(expr, env, number_dtype), dtype)
    return out if out.shape == tuple(shape) else broadcast_to(out, shape)


def _fused(node: Node, inputs: Sequence[Node]) -> Node:
    env = dict(zip(input_symbols(len(inputs)), inputs))
    return _expression(node.attrs["expr"], env, float_dtype_of(node), node.dtype, node.shape)


def _epilogue(node: Node, inputs: Sequence[Node]) -> Node:
    op: Epilogue = get_op(node.op)
    attrs = {k: node.attrs[k] for k in op.producer_attrs}
    producer = Node.make(op.producer, tuple(inputs[:2]), **attrs)
    extras = inputs[2:]
    env = {ACC: producer, **dict(zip(input_symbols(len(extras)), extras))}
    return _expression(node.attrs["expr"], env, float_dtype_of(node), node.dtype, node.shape)


def _fused_reduce(node: Node, inputs: Sequence[Node]) -> Node:
    attrs = node.attrs
    env = dict(zip(input_symbols(len(inputs)), inputs))
    space = elementwise_shape("fused_reduce", node.inputs, attrs)
    elements = _expression(attrs["expr"], env, float_dtype_of(node), node.dtype, space)
    return Node.make(attrs["kind"], (elements,), axes=attrs["axes"], keepdims=attrs["keepdims"])


def _fused_group(node: Node, inputs: Sequence[Node]) -> tuple[Node, ...]:
    env = dict(zip(input_symbols(len(inputs)), inputs))
    outputs: list[Node] = []
    for i, (expr, dtype) in enumerate(zip(node.attrs["exprs"], node.attrs["dtypes"])):
        value = _expression(expr, env, output_float_dtype(node, i), dtype, node.attrs["shape"])
        env[output_symbols(i + 1)[-1]] = value  # y_i: output i as stored
        outputs.append(value)
    return tuple(outputs)


_DROPPED = {"stop_gradient", "nonnegative_check"}  # the identity in a forward export


def unfuse(outputs: Sequence[Node]) -> list[Node]:
    """`outputs` recomputed without fused kernels (the graph is rebuilt where it changes;
    everything else, params and inputs included, is the same node)."""
    new: dict[Node, Node | tuple[Node, ...]] = {}
    for node in topological_order(outputs):
        inputs = [new[i] for i in node.inputs]
        if node.op == "fused":
            new[node] = _fused(node, inputs)
        elif node.op == "fused_reduce":
            new[node] = _fused_reduce(node, inputs)
        elif node.op == "fused_group":
            new[node] = _fused_group(node, inputs)
        elif node.op == "group_output":
            new[node] = inputs[0][node.attrs["index"]]
        elif isinstance(get_op(node.op), Epilogue):
            new[node] = _epilogue(node, inputs)
        elif node.op in _DROPPED:
            new[node] = inputs[0]
        elif all(a is b for a, b in zip(inputs, node.inputs)):
            new[node] = node
        else:
            new[node] = Node.make(node.op, tuple(inputs), **node.attrs)
    return [new[o] for o in outputs]
