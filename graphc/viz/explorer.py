"""What the HTML graph explorer shows, as plain data: for each compiled function, each
stage's graph (nodes with op, name, shape, dtype, the user's source line, the forward op a
gradient node differentiates, a kernel's time), its edges, and its collapsible groups
(fused kernels, the gradient subgraph). graphc/viz/html.py puts it into the page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from graphc.dtypes import scalar_text
from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.ir.op import is_kernel
from graphc.ir.provenance import gradient_of, members_of, origins
from graphc.shapes import shape_str

LEAVES = ("input", "param", "constant")


@dataclass(frozen=True)
class Stage:
    """One drawing of a function: the graph computing `outputs` and the update values, and
    groups of its nodes that the explorer can collapse into one box: {title: nodes}, each
    of `group_kind` ("kernel": a fused kernel's ops; "gradient": what gc.grad built)."""

    name: str
    outputs: tuple[Node, ...]
    updates: tuple[tuple[Node, Node], ...] = ()
    groups: Mapping[str, Sequence[Node]] = field(default_factory=dict)
    group_kind: str = "kernel"


def gradient_groups(outputs: Iterable[Node], updates) -> dict[str, list[Node]]:
    """The gradient subgraph (every node gc.grad built) as one group, if there is one."""
    graph = Graph([*outputs, *(value for _, value in updates)])
    built = [n for n in graph.nodes if n.tag == "grad" and n.op not in LEAVES]
    return {"∇ gradient (built by gc.grad)": built} if built else {}


def stage_data(stage: Stage, times: Mapping[Node, float] | None = None) -> dict:
    """The explorer's data of one stage: nodes (in run order), edges [from, to, slot] by
    node index, and groups {title, kind, nodes} (each node in at most one group)."""
    graph = Graph([*stage.outputs, *(value for _, value in stage.updates)])
    index = {node: k for k, node in enumerate(graph.nodes)}
    outputs = {node: k for k, node in enumerate(stage.outputs)}
    updated: dict[Node, list[str]] = {}
    for param, value in stage.updates:
        updated.setdefault(value, []).append(param.name or param.op)
    owner: dict[Node, int] = {}
    groups = []
    for title, members in stage.groups.items():
        ids = [index[m] for m in members if m in index and m not in owner]
        owner.update({graph.nodes[i]: len(groups) for i in ids})
        if ids:
            groups.append({"title": title, "kind": stage.group_kind, "nodes": ids})
    nodes = [_node(n, outputs.get(n), updated.get(n, []), (times or {}).get(n))
             for n in graph.nodes]
    edges = [[index[i], index[n], slot] for n in graph.nodes for slot, i in enumerate(n.inputs)]
    return {"name": stage.name, "nodes": nodes, "edges": edges, "groups": groups}


def _node(node: Node, output: int | None, updated: list[str], seconds: float | None) -> dict:
    kind = node.op if node.op in LEAVES else ("kernel" if is_kernel(node) else "view")
    data = {"op": node.op, "kind": kind, "shape": shape_str(node.shape),
            "dtype": node.dtype.name, "origin": source_line(node)}
    if node.name is not None:
        data["name"] = node.name
    if node.op == "constant" and node.value.size == 1:
        data["value"] = scalar_text(node.value)
    if node.tag == "grad":
        data["grad"] = True
        forward = forward_of(node)
        if forward is not None:
            data["of"] = f"{forward.op} built at {forward.origin}"
    if output is not None:
        data["output"] = output
    if updated:
        data["updates"] = updated
    expr = node.attrs.get("expr") if node.op.startswith("fused") else None
    if expr is not None:
        data["expr"] = " ".join(str(expr).split())
    members = members_of(node)
    if members:
        data["members"] = sorted({m.op for m in members})
    if seconds is not None:
        data["ms"] = seconds * 1e3
    return data


def source_line(node: Node, most: int = 3) -> str:
    """Where the user built a node: its own line, or for a node an optimization made, the
    line of the node it was rebuilt from, or of the ops a fused kernel computes (`most` of
    them, in order)."""
    members = members_of(node)
    if members:
        lines = list(dict.fromkeys(_first(m).origin for m in members))
        return ", ".join(lines[:most]) + (f" (+{len(lines) - most} more)"
                                          if len(lines) > most else "")
    return _first(node).origin


def _first(node: Node) -> Node:
    """The node the user built that `node` was (re)built from."""
    *_, first = origins(node)
    return first


def forward_of(node: Node) -> Node | None:
    """The forward node a gradient node differentiates; for a fused kernel of gradient
    ops, that of the first of them that has one."""
    forward = gradient_of(node)
    if forward is None:
        forward = next((f for f in map(gradient_of, members_of(node)) if f is not None), None)
    return forward


def kernel_times(graph: Graph, profile) -> dict[Node, float]:
    """Each kernel node's seconds from a Profile (graphc/profile.py): the backends number
    kernels in run order, so the profile's kernels are matched to the graph's kernels in
    order, each to the next one of its op and shape."""
    if profile is None:
        return {}
    kernels = [n for n in graph.nodes if is_kernel(n)]
    times: dict[Node, float] = {}
    start = 0
    for entry in profile.kernels:
        shape = shape_str(entry.shape)
        for k in range(start, len(kernels)):
            if kernels[k].op == entry.op and _fits(kernels[k], shape):
                times[kernels[k]] = times.get(kernels[k], 0.0) + entry.seconds
                start = k + 1
                break
    return times


def _fits(node: Node, shape: str) -> bool:
    """Whether a node of possibly symbolic shape may have the concrete shape `shape`."""
    mine = shape_str(node.shape)
    return mine == shape or any(not isinstance(d, int) for d in node.shape) and \
        mine.count(",") == shape.count(",")
