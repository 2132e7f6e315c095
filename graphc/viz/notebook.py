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


def html(item) -> str:
    """The explorer of a graph value or compiled function, in an iframe."""
    from graphc.viz.html import explorer, iframe

    return iframe(explorer(item))


def svg(dot_text: str) -> str | None:
    """SVG of DOT text by Graphviz, or None (no `dot`, an error, or past SVG_TIMEOUT)."""
    from graphc.viz import render

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "graph.svg"
        try:
            render(dot_text, path, timeout=SVG_TIMEOUT)
        except (RuntimeError, OSError, subprocess.SubprocessError):
            return None
        return path.read_text(encoding="utf-8")


def _node_svg(node) -> str | None:
    from graphc.viz import to_dot

    return svg(to_dot(node))


display.register("html", html)
display.register("svg", _node_svg)
