"""The one traversal every pass uses: rebuild a program's graph bottom-up through a memo
(old node -> new node), so each node is rewritten once, after its inputs, keeping its
provenance (graphc/ir/provenance.py)."""

from __future__ import annotations

from collections.abc import Callable

from graphc.ir.node import Node, tagging
from graphc.ir.program import Program
from graphc.ir.provenance import record_rebuilt

Rule = Callable[[Node, tuple[Node, ...]], Node]

def rebuild(node: Node, inputs: tuple[Node, ...]) -> Node:
    """`node` with its inputs replaced (the same node if none changed); keeps its tag."""
    if all(a is b for a, b in zip(inputs, node.inputs)):
        return node
    with tagging(node.tag):
        new = Node.make(node.op, inputs, **node.attrs)
    record_rebuilt(new, node)
    return new


def rewrite(program: Program, rule: Rule) -> Program:
    """The program with every node replaced by `rule(node, new_inputs)`, bottom-up."""
    memo: dict[Node, Node] = {}
    for node in program.graph.nodes:
        memo[node] = rule(node, tuple(memo[i] for i in node.inputs))
    return program.replace_results([memo[r] for r in program.results])


def rewrite_to_fixed_point(program: Program, rule: Rule, limit: int = 8) -> Program:
    """Rewrite until nothing changes (hash-consing makes 'unchanged' an identity test)."""
    for _ in range(limit):
        new = rewrite(program, rule)
        if all(a is b for a, b in zip(new.results, program.results)):
            return new
        program = new
    return program
