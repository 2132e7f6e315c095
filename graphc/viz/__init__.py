"""Drawing graphs: Graphviz DOT text (a node per op with op, shape and dtype) and files,
and the HTML graph explorer (graphc/viz/html.py).

`to_dot` needs nothing but Python; `write` turns DOT into .svg/.png/.pdf through Graphviz's
`dot` program where it is installed, or writes the explorer (.html). Importing this
package lets graph values show themselves in notebooks (notebook.py).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from graphc.dtypes import scalar_text
from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.shapes import shape_str

GRAD_MARK = "∇ "  # label prefix of nodes built by gc.grad
EXPR_WIDTH = 40  # a fused node's sympy expression is cut to this many characters

_LEAF_STYLE = {
    "input": {"shape": "ellipse", "style": "filled", "fillcolor": "#cfe8ff"},
    "param": {"shape": "box", "style": "filled,rounded", "fillcolor": "#ffe0b2"},
    "constant": {"shape": "plaintext"},
}
_OP_STYLE = {"shape": "box"}
_GRAD_STYLE = {"style": "filled", "fillcolor": "#f3e5f5", "color": "#8e24aa",
               "fontcolor": "#4a148c"}
_OUTPUT_STYLE = {"peripheries": "2", "penwidth": "2"}
_CLUSTER_STYLE = {"style": "rounded,dashed", "color": "#2e7d32", "fontcolor": "#2e7d32",
                  "fontname": "Helvetica"}

IMAGE_FORMATS = ("svg", "png", "pdf")
DOT_SUFFIXES = (".dot", ".gv")
HTML_SUFFIXES = (".html", ".htm")  # the graph explorer (graphc/viz/html.py)


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's `dot` program is needed (to write an image) and is not on PATH."""


class GraphvizTimeoutError(RuntimeError):
    """Graphviz's `dot` did not finish drawing within the time allowed."""


def quote(text: str) -> str:
    """`text` as a DOT double-quoted string that Graphviz shows verbatim (newlines break
    lines; backslashes, quotes and other control characters are escaped)."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\\\x{ord(char):02x}")  # shown as the text \xNN
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _attributes(attrs: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={quote(value)}" for key, value in attrs.items())


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def node_label(node: Node) -> str:
    """What a drawing shows of a node: its op (and name), shape and dtype; a "∇" prefix
    marks nodes built by gc.grad, and a fused node (op "fused", "fused_reduce", ...) shows
    its sympy expression attrs["expr"], shortened; a fused_group shows one line per output
    and a group_output which output it is."""
    head = node.op if node.name is None else f"{node.op} {node.name}"
    if node.op == "constant" and node.value.size == 1:
        head = f"const {scalar_text(node.value)}"
    if node.tag == "grad":
        head = GRAD_MARK + head
    lines = [head]
    expr = node.attrs.get("expr") if node.op.startswith("fused") else None
    if expr is not None:
        lines.append(_shorten(str(expr), EXPR_WIDTH))
    if node.op == "fused_group":  # one line per output: "y<i> = expr : dtype"
        for i, (out, dtype) in enumerate(zip(node.attrs["exprs"], node.attrs["dtypes"])):
            lines.append(_shorten(f"y{i} = {out}", EXPR_WIDTH) + f" : {dtype}")
        lines.append(shape_str(node.shape))
        return "\n".join(lines)
    if node.op == "group_output":
        lines[0] += f" y{node.attrs['index']}"
    lines.append(f"{shape_str(node.shape)} {node.dtype.name}")
    return "\n".join(lines)


def _node_attributes(node: Node, is_output: bool, updated: list[str]) -> dict[str, str]:
    attrs = {"label": node_label(node) + "".join(f"\n→ {name}" for name in updated)}
    attrs.update(_LEAF_STYLE.get(node.op, _OP_STYLE))
    if node.tag == "grad":
        attrs.update({"fontcolor": _GRAD_STYLE["fontcolor"]} if node.op == "constant"
                     else _GRAD_STYLE)
        attrs["tooltip"] = "built by gc.grad"
    if is_output:
        attrs.update(_OUTPUT_STYLE)
    return attrs


def _check_clusters(clusters: Mapping[str, Iterable[Node]], graph: Graph) -> dict[Node, int]:
    """Which cluster each clustered node is in; raises ValueError for a node outside the
    graph or in two clusters (Graphviz cannot draw overlapping clusters)."""
    owner: dict[Node, int] = {}
    names = list(clusters)
    for k, (name, members) in enumerate(clusters.items()):
        for node in members:
            if not isinstance(node, Node):
                raise TypeError(f"to_dot: cluster {name!r} holds {node!r}, not a graph value")
            if node not in graph:
                raise ValueError(f"to_dot: cluster {name!r} holds {node!r}, which is not in "
                                 "the graph being drawn")
            if owner.get(node, k) != k:
                raise ValueError(f"to_dot: {node!r} is in clusters {names[owner[node]]!r} and "
                                 f"{name!r}; clusters must not overlap")
            owner[node] = k
    return owner


def to_dot(values: Node | Iterable[Node], name: str = "graphc", *,
           clusters: Mapping[str, Iterable[Node]] | None = None,
           updates: Iterable[tuple[Node, Node]] | Mapping[Node, Node] | None = None) -> str:
    """DOT text of the graph computing `values`.

    Inputs, params and constants each have their own style; `values` are drawn with a
    double border; nodes built by gc.grad are tinted purple and labelled "∇ op".
    clusters: {title: nodes} draws each group in a box (`subgraph cluster_k`), e.g. the
    nodes a fusion pass merged. updates: (param, new value) pairs; each new value gets a
    "→ param" line, as in a compiled training step.
    """
    outputs = [values] if isinstance(values, Node) else list(values)
    for value in outputs:
        if not isinstance(value, Node):
            raise TypeError(f"to_dot: expected graph values, got {type(value).__name__}")
    pairs = list(updates.items() if isinstance(updates, Mapping) else updates or ())
    graph = Graph(outputs + [value for _, value in pairs])
    owner = _check_clusters(clusters or {}, graph)
    is_output = {id(node) for node in outputs}
    updated: dict[Node, list[str]] = {}
    for param, value in pairs:
        updated.setdefault(value, []).append(param.name or param.op)

    ids = {node: f"n{k}" for k, node in enumerate(graph.nodes)}

    def statement(node: Node, indent: str) -> str:
        attrs = _node_attributes(node, id(node) in is_output, updated.get(node, []))
        return f"{indent}{ids[node]} [{_attributes(attrs)}];"

    lines = [f"digraph {quote(name)} {{", "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    for k, title in enumerate(clusters or {}):
        lines.append(f"  subgraph cluster_{k} {{")
        lines += [f"    {key}={quote(value)};"
                  for key, value in {"label": title, **_CLUSTER_STYLE}.items()]
        lines += [statement(node, "    ") for node in graph.nodes if owner.get(node) == k]
        lines.append("  }")
    lines += [statement(node, "  ") for node in graph.nodes if node not in owner]
    for node in graph.nodes:
        for slot, source in enumerate(node.inputs):
            label = f' [label="{slot}"]' if len(node.inputs) > 1 else ""
            lines.append(f"  {ids[source]} -> {ids[node]}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write(graph, path: str | Path, *, timeout: float = 60.0, **options) -> Path:
    """Write a drawing to `path` and return the path.

    graph: DOT text, a graph value or a list of them (drawn with `to_dot(graph, **options)`),
    or anything with a `to_dot()` method such as a compiled function.
    The suffix picks the format: .dot/.gv write DOT text; .svg/.png/.pdf run Graphviz's
    `dot` (which must be on PATH; GraphvizNotFoundError otherwise) for at most `timeout`
    seconds; .html writes the self-contained graph explorer (graphc/viz/html.py) of graph
    values or of compiled functions, every stage of them (options: title, updates, and
    profiles={index: Profile} to colour kernels by time).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        if isinstance(graph, str):
            raise TypeError("write: the HTML explorer draws graph values or compiled "
                            "functions, not DOT text")
        from graphc.viz.html import explorer

        path.write_text(explorer(graph, **options), encoding="utf-8")
        return path
    if isinstance(graph, str):
        text = graph
    elif hasattr(graph, "to_dot") and not isinstance(graph, Node):
        text = graph.to_dot(**options)
    else:
        text = to_dot(graph, **options)
    if suffix in DOT_SUFFIXES:
        path.write_text(text, encoding="utf-8")
        return path
    if suffix.lstrip(".") not in IMAGE_FORMATS:
        known = ", ".join(DOT_SUFFIXES + tuple("." + f for f in IMAGE_FORMATS) + HTML_SUFFIXES)
        raise ValueError(f"write: cannot tell the format of {path.name!r} from its suffix; "
                         f"use one of {known}")
    render(text, path, timeout=timeout)
    return path


def dot_program() -> str | None:
    """The path of Graphviz's `dot` program, or None where it is not installed."""
    return shutil.which("dot")


def render(text: str, path: Path, *, timeout: float = 60.0) -> None:
    """Run Graphviz's `dot` on DOT text, writing the image format that `path`'s suffix names."""
    fmt = path.suffix.lower().lstrip(".")
    program = dot_program()
    if program is None:
        raise GraphvizNotFoundError(
            f"writing {path.name} needs Graphviz's `dot` program, which is not on PATH: "
            "install Graphviz (e.g. `apt-get install graphviz`, `brew install graphviz`, "
            "`conda install graphviz`) or write a .dot file instead")
    try:
        done = subprocess.run([program, f"-T{fmt}", "-o", str(path)], input=text.encode(),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizTimeoutError(f"Graphviz's dot took more than {timeout:g} s to draw "
                           f"{path.name}; write a .dot file instead") from None
    except OSError as exc:
        raise RuntimeError(f"could not run Graphviz's dot ({program}): {exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"Graphviz's dot failed drawing {path.name} (exit status "
                           f"{done.returncode}): {message}")


from graphc.viz import notebook  # noqa: E402,F401  (registers the notebook display of nodes)
