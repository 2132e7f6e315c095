"""Epilogue fusion: an elementwise kernel (fused or a single op) that consumes the whole
output of a matmul or conv2d, which nothing else uses, becomes the producer's epilogue
(`fused_matmul` / `fused_conv2d`, graphc/ops/epilogue.py): bias add and activation in the
forward pass, the relu-mask multiply in the backward pass, applied in the producer's loop.
Runs after elementwise fusion."""

from __future__ import annotations

import sympy

from graphc.ir.graph import Graph
from graphc.ir.node import Node, tagging
from graphc.ops.epilogue import ACC
from graphc.ops.fused import input_symbols
from graphc.program import Program

from .expression import Expression, fusable
from .rewrite import members_of, rebuild, record_members

PRODUCERS = {"matmul": ("fused_matmul", ()), "conv2d": ("fused_conv2d", ("stride", "padding"))}


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
    op, attr_names = PRODUCERS[producer.op]
    attrs = {k: producer.attrs[k] for k in attr_names}
    with tagging(consumer.tag):
        node = Node.make(op, (*producer.inputs, *extras), expr=expr,
                         dtype=consumer.dtype.name, **attrs)
    return record_members(node, [origin[1], *(members_of(origin[0]) or [origin[0]])])


def epilogue(program: Program) -> Program:
    graph = Graph(program.results)
    results = set(program.results)
    memo: dict[Node, Node] = {}
    for node in graph.nodes:
        new = rebuild(node, tuple(memo[i] for i in node.inputs))
        if node.op == "fused" or fusable(node):
            for old_input, new_input in zip(node.inputs, new.inputs):
                if (old_input.op in PRODUCERS and old_input not in results
                        and graph.consumers[old_input] == [node]
                        and new.shape == new_input.shape
                        and new_input in _body(new)[1]):
                    new = attach(new, new_input, (node, old_input))
                    break
        memo[node] = new
    return program.replace_results([memo[r] for r in program.results])
