"""Reduction fusion: a sum, mean, max or min of an elementwise tree becomes one
`fused_reduce` node (graphc/ops/fused_reduce.py) that computes the tree inside the
reduction loop, so the tree's value is never stored.

The tree takes every fusable producer of the iteration space's shape that needs no
stored value of its own: one whose consumers are all elementwise ops or reductions. Such
a producer used elsewhere too is computed again in the other kernels (a recomputation
instead of a store and a load: softmax becomes three kernels, max, sum(exp(x - max)) and
exp(x - max) / sum). A producer that a result, a matmul or any other op needs stored is
reduced from its stored value instead, and so is a transcendental one (exp, log, erf,
...) with several consumers, once it is big enough (STORE_FROM) for the extra kernel not
to matter: elementwise fusion stores it for the others anyway, and loading it costs less
than computing it again.
Runs before elementwise fusion, which then fuses what is left.
"""

from __future__ import annotations

from graphc.ir.graph import Graph
from graphc.ir.node import Node, tagging
from graphc.ir.program import Program
from graphc.ir.provenance import record_members
from graphc.ops.fused_reduce import KINDS

from .expression import MAX_DEPTH, Expression, fusable, joins, op_depth
from .rewrite import rebuild

STORE_FROM = 1 << 14  # elements (static dims) from which a shared expensive value is stored
EXPENSIVE = frozenset({"exp", "log", "tanh", "erf", "sigmoid", "gelu", "gelu_tanh", "sin",
                       "cos", "pow"})


def _stored(program: Program, graph: Graph) -> set[Node]:
    """The nodes some result or non-elementwise, non-reduction consumer needs stored,
    and the expensive ones with several consumers."""
    results = set(program.results)

    def needs_store(n: Node) -> bool:
        consumers = graph.consumers[n]
        if n in results or any(not fusable(c) and c.op not in KINDS for c in consumers):
            return True
        return n.op in EXPENSIVE and len(consumers) > 1 and _static_size(n) >= STORE_FROM

    return {n for n in graph.nodes if needs_store(n)}


def _static_size(node: Node) -> int:
    """The product of a node's static dims (a symbolic dim counts as 1)."""
    size = 1
    for d in node.shape:
        size *= d if isinstance(d, int) else 1
    return size


def producer_tree(root: Node, stored: set[Node], position: dict[Node, int]) -> list[Node]:
    """`root` and the producers it absorbs (see the module docstring), in topological
    order (`position`: each node's index in it); empty when root itself is stored. A
    producer deeper than MAX_DEPTH expression levels below root is left out (elementwise
    fusion computes it, and what it alone reads, in kernels of their own)."""
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
    order = sorted(members, key=position.__getitem__)
    above = {root: 0}  # the most expression levels between a member and root
    for node in reversed(order):
        for i in node.inputs:
            if i in members:
                above[i] = max(above.get(i, 0), above[node] + op_depth(node))
    return [n for n in order if above[n] + op_depth(n) <= MAX_DEPTH]


def reduce_fusion(program: Program) -> Program:
    graph = program.graph
    stored = _stored(program, graph)
    position = {n: k for k, n in enumerate(graph.nodes)}
    memo: dict[Node, Node] = {}
    for node in graph.nodes:
        members = producer_tree(node.inputs[0], stored, position) if node.op in KINDS else []
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
