"""A graph: every node reachable from some outputs, in topological order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from graphc.ir.node import Node

if TYPE_CHECKING:
    import networkx as nx


def topological_order(outputs: Iterable[Node]) -> list[Node]:
    """Nodes reachable from outputs, each after all of its inputs (iterative, no recursion):
    a depth-first post-order, inputs visited left to right."""
    order: list[Node] = []
    seen: set[Node] = set()
    for root in outputs:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.inputs))]
        while stack:
            node, inputs = stack[-1]
            for child in inputs:
                if child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


class Graph:
    """The nodes computing `outputs`, topologically ordered, with consumer lists (read
    only: a program's graph is built once and shared, `Program.graph`)."""

    def __init__(self, outputs: Iterable[Node]):
        self.outputs: tuple[Node, ...] = tuple(outputs)
        self.nodes: list[Node] = topological_order(self.outputs)
        self.consumers: dict[Node, list[Node]] = {n: [] for n in self.nodes}
        for node in self.nodes:
            for i in node.inputs:
                users = self.consumers[i]
                if not users or users[-1] is not node:  # a node's uses of i come in a row
                    users.append(node)

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __contains__(self, node: Node) -> bool:
        return node in self.consumers

    def leaves(self, op: str) -> list[Node]:
        """The nodes of one leaf kind ("input", "param", "constant"), in order."""
        return [n for n in self.nodes if n.op == op]

    def to_networkx(self) -> nx.MultiDiGraph:
        """A networkx view: node keys are Nodes, an edge per input slot (attr `slot`).
        networkx is imported here, not with the module: it costs ~0.35 s, and only this
        view uses it."""
        import networkx as nx

        g = nx.MultiDiGraph()
        for node in self.nodes:
            g.add_node(node, op=node.op)
            for slot, i in enumerate(node.inputs):
                g.add_edge(i, node, slot=slot)
        return g
