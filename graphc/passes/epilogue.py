"""Epilogue fusion: an elementwise kernel (fused or a single op) that consumes the whole
output of a matmul or conv2d, which nothing else uses, becomes the producer's epilogue
(`fused_matmul` / `fused_conv2d`, graphc/ops/epilogue.py): bias add and activation in the
forward pass, the relu-mask multiply in the backward pass, applied in the producer's loop.
Only a consumer of the producer's dtype is attached (`matmul(x, w) > 0`, a bool, is not:
the value is stored in place of the producer's).
A multi-output `fused_group` gives up the one member that reads such an output (when no
other member does and it reads no other member): that member becomes the epilogue, the
rest read its stored value. A group computing param updates stays whole (group fusion
made a param's whole update one loop over the gradient). Runs after elementwise and group
fusion."""

from __future__ import annotations

import sympy

from graphc.ir.node import Node, tagging
from graphc.ir.op import get_op
from graphc.ir.program import Program
from graphc.ir.provenance import members_of, record_members
from graphc.ops.epilogue import ACC
from graphc.ops.fused_group import output_symbols
from graphc.ops.scalar import input_symbols
from graphc.shapes import broadcast

from .expression import Expression, fusable
from .group_fusion import build_group
from .rewrite import rebuild


def _producer(node: Node) -> bool:
    """Whether a node's op takes an epilogue (declares one: matmul, conv2d)."""
    return get_op(node.op).epilogue is not None


def _body(node: Node) -> tuple[sympy.Basic, tuple[Node, ...]]:
    if node.op == "fused":
        return node.attrs["expr"], node.inputs
    body = Expression([node])
    return body.expr, tuple(body.operands)


def attach(consumer: Node, producer: Node, origin: tuple[Node, Node]) -> Node:
    """`consumer` (of `producer`'s full output) as the producer's epilogue; `origin` is the
    (consumer, producer) pair of the pass's input graph, for provenance."""
    expr, operands = _body(consumer)
    extras = [o for o in operands if o is not producer]
    old = input_symbols(len(operands))
    new = iter(input_symbols(len(extras)))
    mapping = {s: ACC if o is producer else next(new) for s, o in zip(old, operands)}
    with sympy.evaluate(False):
        expr = expr.xreplace(mapping)
    op = get_op(producer.op)
    attrs = {k: producer.attrs[k] for k in op.epilogue_attrs}
    with tagging(consumer.tag):
        node = Node.make(op.epilogue, (*producer.inputs, *extras), expr=expr,
                         dtype=consumer.dtype.name, **attrs)
    return record_members(node, [origin[1], *(members_of(origin[0]) or [origin[0]])])


def _fused(expr: sympy.Basic, operands: list[Node], dtype: str, shape) -> Node:
    """A fused node of expr over `operands` (symbols x0.. in order), only those it uses."""
    used = [(s, o) for s, o in zip(input_symbols(len(operands)), operands)
            if s in expr.free_symbols]
    inputs: list[Node] = []
    mapping = {}
    for s, o in used:
        if o not in inputs:
            inputs.append(o)
        mapping[s] = input_symbols(inputs.index(o) + 1)[-1]
    with sympy.evaluate(False):
        expr = expr.xreplace(mapping)
    implied = inputs and broadcast(*(i.shape for i in inputs)) == tuple(shape)
    return Node.make("fused", tuple(inputs), expr=expr, dtype=dtype,
                     **({} if implied else {"shape": shape}))


def _ungroup(group: Node) -> list[Node]:
    """A fused_group's outputs as separate fused nodes (a later one reads an earlier one
    where the group's expression reads its output y_j)."""
    members: list[Node] = []
    for expr, dtype in zip(group.attrs["exprs"], group.attrs["dtypes"]):
        outputs = output_symbols(len(members))
        operands = [*group.inputs, *members]
        with sympy.evaluate(False):
            expr = expr.xreplace({y: input_symbols(len(group.inputs) + j + 1)[-1]
                                  for j, y in enumerate(outputs)})
        members.append(_fused(expr, operands, dtype, group.attrs["shape"]))
    return members


def _peel(group: Node, producer: Node, origin: Node) -> list[Node] | None:
    """The group's outputs with the one member that reads `producer` (and no other
    member) as the producer's epilogue, or None if no member qualifies. `origin`: the
    producer in the pass's input graph."""
    with tagging(group.tag):
        members = _ungroup(group)
        readers = [m for m in members if producer in m.inputs]
        if (len(readers) != 1 or any(i in members for i in readers[0].inputs)
                or readers[0].dtype != producer.dtype):
            return None
        (head,) = readers
        new_of = {head: attach(head, producer, (head, origin))}
        for m in members:
            if m is not head:
                new_of[m] = rebuild(m, tuple(new_of.get(i, i) for i in m.inputs))
        rest = [new_of[m] for m in members if m is not head]
        if len(rest) > 1:
            grouped = dict(zip(rest, build_group(rest, lambda n: n)))
            new_of.update({m: grouped[new_of[m]] for m in members if m is not head})
    return [new_of[m] for m in members]


def epilogue(program: Program) -> Program:
    graph = program.graph
    results = set(program.results)
    memo: dict[Node, Node] = {}
    peeled: dict[Node, list[Node]] = {}
    updates = {value for _, value in program.updates}
    for node in graph.nodes:
        if node.op == "group_output" and node.inputs[0] in peeled:
            memo[node] = peeled[node.inputs[0]][node.attrs["index"]]
            continue
        new = rebuild(node, tuple(memo[i] for i in node.inputs))
        if node.op == "fused_group" and not updates.intersection(graph.consumers[node]):
            for old_input, new_input in zip(node.inputs, new.inputs):
                if (_producer(old_input) and old_input not in results
                        and graph.consumers[old_input] == [node]
                        and new.shape == new_input.shape):
                    outputs = _peel(new, new_input, old_input)
                    if outputs is not None:
                        peeled[node] = outputs
                        break
        if node.op == "fused" or fusable(node):
            for old_input, new_input in zip(node.inputs, new.inputs):
                if (_producer(old_input) and old_input not in results
                        and graph.consumers[old_input] == [node]
                        and new.shape == new_input.shape and new.dtype == new_input.dtype
                        and new_input in _body(new)[1]):
                    new = attach(new, new_input, (node, old_input))
                    break
        memo[node] = new
    return program.replace_results([memo[r] for r in program.results])
