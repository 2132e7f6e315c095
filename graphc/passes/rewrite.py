"""The one traversal every pass uses: rebuild a program's graph bottom-up through a memo
(old node -> new node), so each node is rewritten once, after its inputs; and the
provenance drawings use: which node a rebuilt node came from, which nodes a fused kernel
computes."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence

from graphc.ir.graph import Graph
from graphc.ir.node import Node, tagging
from graphc.program import Program

Rule = Callable[[Node, tuple[Node, ...]], Node]

_ORIGIN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MEMBERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def record_members(kernel: Node, members: Sequence[Node]) -> Node:
    """Remember which nodes a fused kernel computes (for drawings); returns the kernel."""
    _MEMBERS[kernel] = tuple(members)
    return kernel


def members_of(kernel: Node) -> list[Node]:
    """The unfused nodes a fused kernel computes (empty if it is not one), following
    kernels made of kernels (an epilogue over a fused node)."""
    out: list[Node] = []
    stack = list(reversed(_MEMBERS.get(kernel, ())))
    while stack:
        member = stack.pop()
        if member in _MEMBERS:
            stack.extend(reversed(_MEMBERS[member]))
        else:
            out.append(member)
    return out


def origins(node: Node) -> Iterator[Node]:
    """The node, then the node it was rebuilt from, and so on back."""
    while node is not None:
        yield node
        node = _ORIGIN.get(node)


def rebuild(node: Node, inputs: tuple[Node, ...]) -> Node:
    """`node` with its inputs replaced (the same node if none changed); keeps its tag."""
    if all(a is b for a, b in zip(inputs, node.inputs)):
        return node
    with tagging(node.tag):
        new = Node.make(node.op, inputs, **node.attrs)
    if new is not node and new not in _ORIGIN:
        _ORIGIN[new] = node
        if node in _MEMBERS:
            _MEMBERS[new] = _MEMBERS[node]
    return new


def rewrite(program: Program, rule: Rule) -> Program:
    """The program with every node replaced by `rule(node, new_inputs)`, bottom-up."""
    memo: dict[Node, Node] = {}
    for node in Graph(program.results).nodes:
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
