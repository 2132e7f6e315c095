"""Pictures of graphs in Jupyter: graph values (`Node._repr_html_`/`_repr_svg_`, through
graphc/ir/display.py) and compiled functions (`Executable._repr_html_`/`_repr_svg_`) show
the HTML explorer inline, and an SVG where Graphviz is installed (for viewers that run no
scripts, such as a notebook rendered on a web page)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from graphc.ir import display

SVG_TIMEOUT = 10.0  # seconds Graphviz may take for a notebook's picture
# Jupyter asks for every form of an output it shows, the SVG beside the HTML it displays:
# bigger graphs get none (Graphviz takes seconds to minutes on them; the HTML draws them).
SVG_MAX_NODES = 150


def html(item) -> str:
    """The explorer of a graph value or compiled function, in an iframe."""
    from graphc.viz.html import explorer, iframe

    return iframe(explorer(item))


def svg(dot_text: str, nodes: int) -> str | None:
    """SVG of the DOT text of a graph of `nodes` nodes by Graphviz, or None (more than
    SVG_MAX_NODES nodes, no `dot`, an error, or past SVG_TIMEOUT)."""
    from graphc.viz import render

    if nodes > SVG_MAX_NODES:
        return None
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "graph.svg"
        try:
            render(dot_text, path, timeout=SVG_TIMEOUT)
        except (RuntimeError, OSError, subprocess.SubprocessError):
            return None
        return path.read_text(encoding="utf-8")


def _node_svg(node) -> str | None:
    from graphc.ir.graph import Graph
    from graphc.viz import to_dot

    return svg(to_dot(node), len(Graph([node]).nodes))


display.register("html", html)
display.register("svg", _node_svg)
