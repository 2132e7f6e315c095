"""Multi-output fusion: an elementwise kernel whose value is a program result (an output or
an update value) is merged with the elementwise kernels of the same shape that consume it
into one `fused_group` (graphc/ops/fused_group.py), which stores every member's value and
hands it to the members after it as a register, not through memory.

Elementwise fusion cannot inline a result into its consumers (the result must be stored),
so an optimizer's update took a kernel per new state tensor and one for the param, each
re-reading the state it just wrote (momentum: v' then p' = p - lr v'). Grouped, the whole
update of a param is one loop. Runs after elementwise fusion, before epilogue fusion (a
gradient read by a group stays a plain matmul). Two kernels are not merged when a path
between them leaves the group (the group would depend on itself).
"""

from __future__ import annotations

import heapq

import sympy

from graphc.ir.graph import Graph
from graphc.ir.node import Node, tagging
from graphc.ir.program import Program
from graphc.ir.provenance import record_members
from graphc.ops.fused_group import output_symbols
from graphc.ops.scalar import input_symbols

from .expression import Expression, fusable
from .rewrite import rebuild


def _is_kernel(node: Node) -> bool:
    return node.op == "fused" or fusable(node)


def _body(node: Node) -> tuple[sympy.Basic, tuple[Node, ...]]:
    """An elementwise kernel's expression and the operands its symbols x0.. stand for."""
    if node.op == "fused":
        return node.attrs["expr"], node.inputs
    body = Expression([node])
    return body.expr, tuple(body.operands)


def groups(program: Program) -> list[list[Node]]:
    """The kernels to merge, in groups of two or more, members in topological order."""
    graph = program.graph
    results = set(program.results)
    position = {n: k for k, n in enumerate(graph.nodes)}
    group_of: dict[Node, list[Node]] = {}

    def members(node: Node) -> list[Node]:
        return group_of.get(node, [node])

    def closed(candidate: set[Node]) -> bool:
        """Whether no path from a member to a member goes through a non-member."""
        last = max(position[m] for m in candidate)
        stack = [u for m in candidate for u in graph.consumers[m] if u not in candidate]
        seen: set[Node] = set()
        while stack:
            node = stack.pop()
            if node in candidate:
                return False
            if node in seen or position[node] > last:
                continue
            seen.add(node)
            stack += graph.consumers[node]
        return True

    for node in graph.nodes:
        if node not in results or not _is_kernel(node):
            continue
        for user in graph.consumers[node]:
            if not _is_kernel(user) or user.shape != node.shape or user in members(node):
                continue
            candidate = set(members(node)) | set(members(user))
            if closed(candidate):
                merged = sorted(candidate, key=position.__getitem__)
                for m in merged:
                    group_of[m] = merged
    unique = {id(g): g for g in group_of.values()}
    return list(unique.values())


def build_group(members: list[Node], outside) -> list[Node]:
    """The fused_group computing `members` (topological order; `outside(node)` is an
    operand's node in the new graph): one group_output projection per member."""
    index = {m: i for i, m in enumerate(members)}
    operands: list[Node] = []
    symbol_of: dict[Node, sympy.Symbol] = {}
    exprs = []
    # One unevaluated block for every member: entering and leaving one clears sympy's
    # cache (nothing in the loop depends on evaluation but the xreplace).
    with sympy.evaluate(False):
        for member in members:
            expr, inputs = _body(member)
            mapping = {}
            for symbol, x in zip(input_symbols(len(inputs)), inputs):
                if x in index:
                    mapping[symbol] = output_symbols(index[x] + 1)[-1]
                    continue
                new = outside(x)
                if new not in symbol_of:
                    symbol_of[new] = input_symbols(len(operands) + 1)[-1]
                    operands.append(new)
                mapping[symbol] = symbol_of[new]
            exprs.append(expr.xreplace(mapping))
    root = members[-1]
    with tagging(root.tag):
        group = Node.make("fused_group", tuple(operands), exprs=tuple(exprs),
                          dtypes=tuple(m.dtype.name for m in members), shape=root.shape)
    record_members(group, members)
    outputs = []
    for i, member in enumerate(members):
        with tagging(member.tag):
            outputs.append(Node.make("group_output", (group,), index=i))
    return outputs


def group_fusion(program: Program) -> Program:
    found = groups(program)
    graph = program.graph
    group_of = {m: g for g in found for m in g}
    memo: dict[Node, Node] = {}
    for unit in _schedule(graph, group_of):
        if isinstance(unit, list):
            memo.update(zip(unit, build_group(unit, memo.__getitem__)))
        else:
            memo[unit] = rebuild(unit, tuple(memo[i] for i in unit.inputs))
    return program.replace_results([memo[r] for r in program.results])


def _schedule(graph: Graph, group_of: dict[Node, list[Node]]) -> list:
    """The graph's nodes in an order that computes each group (a list of nodes) as one
    unit after every operand of its members: Kahn's algorithm on the contracted graph,
    ties broken by the original order (units have distinct positions)."""
    position = {n: k for k, n in enumerate(graph.nodes)}

    def unit(node: Node):
        group = group_of.get(node)
        return node if group is None else group[0]

    waiting: dict[Node, int] = {}
    users: dict[Node, list[Node]] = {}
    for node in graph.nodes:
        u = unit(node)
        waiting.setdefault(u, 0)
        for i in node.inputs:
            if unit(i) is not u:
                waiting[u] += 1
                users.setdefault(unit(i), []).append(u)
    ready = [(position[u], u) for u, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, u = heapq.heappop(ready)
        order.append(group_of[u] if u in group_of else u)
        for v in users.get(u, []):
            waiting[v] -= 1
            if waiting[v] == 0:
                heapq.heappush(ready, (position[v], v))
    return order
