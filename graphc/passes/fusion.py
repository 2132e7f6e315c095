"""Elementwise fusion: every maximal tree of elementwise ops over one iteration space
becomes one `fused` node (graphc/ops/fused.py) whose body is a sympy expression.

Nodes are visited from the results back. An elementwise node joins the kernel of its
consumers when all of them are in one kernel, it is not itself a result, it has that
kernel's shape (a smaller operand is computed once by its own kernel, not once per output
element) and the kernel's expression stays within MAX_DEPTH levels (a long chain of ops
becomes a chain of kernels). Otherwise it roots a kernel of its own. A kernel of one op
stays that op.
"""

from __future__ import annotations

from graphc.ir.node import Node, tagging
from graphc.ir.program import Program
from graphc.ir.provenance import record_members

from .expression import MAX_DEPTH, Expression, fusable, joins, op_depth
from .rewrite import rebuild


def kernel_roots(program: Program) -> dict[Node, Node]:
    """Each fusable node of the program's graph -> the root of the kernel it joins. A node
    that would make its kernel's expression deeper than MAX_DEPTH roots a kernel instead."""
    graph = program.graph
    results = set(program.results)
    root_of: dict[Node, Node] = {}
    above: dict[Node, int] = {}  # expression levels between a member and its kernel's root
    for node in reversed(graph.nodes):
        if not fusable(node):
            continue
        users = graph.consumers[node]
        roots = {root_of.get(user) for user in users}
        if node not in results and len(roots) == 1 and None not in roots:
            (root,) = roots
            levels = max(above[user] + op_depth(user) for user in users)
            if (node.shape == root.shape and levels + op_depth(node) <= MAX_DEPTH
                    and all(joins(node, user) for user in users)):
                root_of[node], above[node] = root, levels
                continue
        root_of[node], above[node] = node, 0
    return root_of


def fusion_groups(program: Program) -> list[list[Node]]:
    """The kernels of two or more ops that fusion makes: members in topological order."""
    root_of = kernel_roots(program)
    groups: dict[Node, list[Node]] = {}
    for node in program.graph.nodes:
        if node in root_of:
            groups.setdefault(root_of[node], []).append(node)
    return [members for members in groups.values() if len(members) > 1]


def fuse(members: list[Node], outside) -> Node:
    """The fused node computing `members` (the last is the root)."""
    body = Expression(members, outside)
    with tagging(body.root.tag):
        node = Node.make("fused", tuple(body.operands), expr=body.expr,
                         dtype=body.root.dtype.name, **body.shape_attrs())
    return record_members(node, members)


def fusion(program: Program) -> Program:
    groups = {members[-1]: members for members in fusion_groups(program)}
    inlined = {n for members in groups.values() for n in members[:-1]}
    memo: dict[Node, Node] = {}
    for node in program.graph.nodes:
        if node in inlined:
            continue
        if node in groups:
            memo[node] = fuse(groups[node], memo.__getitem__)
        else:
            memo[node] = rebuild(node, tuple(memo[i] for i in node.inputs))
    return program.replace_results([memo[r] for r in program.results])
