"""Reduction fusion: a sum, mean, max or min of an elementwise tree becomes one
`fused_reduce` node (graphc/ops/fused_reduce.py) that computes the tree inside the
reduction loop, so the tree's value is never stored.

The tree takes every fusable producer of the iteration space's shape that needs no
stored value of its own: one whose consumers are all elementwise ops or reductions. Such
a producer used elsewhere too is computed again in the other kernels (a recomputation
instead of a store and a load: softmax becomes three kernels, max, sum(exp(x - max)) and
exp(x - max) / sum). A producer that a result, a matmul or any other op needs stored is
reduced from its stored value instead. Runs before elementwise fusion, which then fuses
what is left.
"""

from __future__ import annotations

from graphc.ir.graph import Graph
from graphc.ir.node import Node, tagging
from graphc.ops.fused_reduce import KINDS
from graphc.program import Program

from .expression import Expression, fusable, joins
from .rewrite import rebuild, record_members


def _stored(program: Program, graph: Graph) -> set[Node]:
    """The nodes some result or non-elementwise, non-reduction consumer needs stored."""
    results = set(program.results)
    return {n for n in graph.nodes if n in results or any(
        not fusable(c) and c.op not in KINDS for c in graph.consumers[n])}


def producer_tree(root: Node, stored: set[Node]) -> list[Node]:
    """`root` and the producers it absorbs (see the module docstring), in topological
    order; empty when root itself is stored."""
    if root in stored or not fusable(root):
        return []
    members = {root}
    stack = [root]
    while stack:
        node = stack.pop()
        for i in node.inputs:
            if (i not in members and i not in stored and fusable(i) and i.shape == root.shape
                    and joins(i, node)):
                members.add(i)
                stack.append(i)
    return [n for n in Graph([root]).nodes if n in members]


def reduce_fusion(program: Program) -> Program:
    graph = Graph(program.results)
    stored = _stored(program, graph)
    memo: dict[Node, Node] = {}
    for node in graph.nodes:
        members = producer_tree(node.inputs[0], stored) if node.op in KINDS else []
        if not members:
            memo[node] = rebuild(node, tuple(memo[i] for i in node.inputs))
            continue
        body = Expression(members, memo.__getitem__)
        with tagging(node.tag):
            memo[node] = Node.make("fused_reduce", tuple(body.operands), expr=body.expr,
                                   kind=node.op, axes=node.attrs["axes"],
                                   keepdims=node.attrs["keepdims"], dtype=node.dtype.name,
                                   **body.shape_attrs())
        record_members(memo[node], [*members, node])
    return program.replace_results([memo[r] for r in program.results])
