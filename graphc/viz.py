"""Graphviz DOT text of graphs: a node per op showing op, shape and dtype."""

from __future__ import annotations

from collections.abc import Iterable

from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.shapes import shape_str

_LEAF_STYLE = {
    "input": 'shape=ellipse, style=filled, fillcolor="#cfe8ff"',
    "param": 'shape=box, style="filled,rounded", fillcolor="#ffe0b2"',
    "constant": 'shape=plaintext',
}
_GRAD_STYLE = 'shape=box, style=filled, fillcolor="#f3e5f5", color="#8e24aa"'
_OP_STYLE = "shape=box"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def node_label(node: Node) -> str:
    """What a drawing shows of a node: its op (and name), shape and dtype."""
    head = node.op if node.name is None else f"{node.op} {node.name}"
    if node.op == "constant" and node.shape == ():
        head = f"const {node.value.item():.6g}"
    return f"{head}\n{shape_str(node.shape)} {node.dtype.name}"


def to_dot(values: Node | Iterable[Node], name: str = "graphc") -> str:
    """DOT text of the graph computing `values`; outputs are drawn with a double border and
    nodes built by gc.grad are tinted and marked "grad"."""
    outputs = [values] if isinstance(values, Node) else list(values)
    graph = Graph(outputs)
    ids = {node: f"n{k}" for k, node in enumerate(graph.nodes)}
    lines = [f"digraph {_quote(name)} {{", "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];']
    for node in graph.nodes:
        style = _LEAF_STYLE.get(node.op, _GRAD_STYLE if node.tag == "grad" else _OP_STYLE)
        label = node_label(node)
        extra = ', tooltip="grad"' if node.tag == "grad" else ""
        if node in outputs:
            extra += ", peripheries=2"
        lines.append(f"  {ids[node]} [label={_quote(label)}, {style}{extra}];")
    for node in graph.nodes:
        for slot, i in enumerate(node.inputs):
            label = f' [label="{slot}"]' if len(node.inputs) > 1 else ""
            lines.append(f"  {ids[i]} -> {ids[node]}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"
