"""The HTML graph explorer: one self-contained file (no network when it is viewed) that
draws the stages of compiled functions, laid out in the browser by dagre.

dagre (@dagrejs/dagre, MIT, vendored in graphc/viz/assets with its licence) is the layered
(Sugiyama) layout that Graphviz's `dot` also does, in 49 KB of JavaScript, fast enough for
the hundreds of nodes of a Transformer's training step, where `dot` takes minutes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from importlib import resources

from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.viz.explorer import Stage, gradient_groups, kernel_times, stage_data

ASSETS = ("dagre.min.js", "explorer.js", "explorer.css")
STAGE_ORDER = ("optimized", "backward", "forward", "fused", "graph")  # the first shown

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<header>
  <h1 id="title">{title}</h1>
  <select id="function" title="compiled function"></select>
  <select id="stage" title="stage"></select>
  <input id="search" type="search" placeholder="search a name or op (Enter: next)">
  <span id="status"></span>
  <button id="collapse-all" type="button">collapse all</button>
  <button id="expand-all" type="button">expand all</button>
  <button id="fit" type="button">fit</button>
</header>
<div id="legend"></div>
<div id="main">
<div id="groups" hidden></div>
<div id="view">
  <svg id="canvas" xmlns="http://www.w3.org/2000/svg">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6"
      markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z"/></marker></defs>
    <g id="scene"></g>
  </svg>
</div>
</div>
<div id="tooltip" hidden></div>
<script type="application/json" id="graphc-data">{data}</script>
<script>
{dagre}
</script>
<script>
{explorer}
</script>
</body>
</html>
"""


def asset(name: str) -> str:
    """The text of one of the explorer's files (package data)."""
    return resources.files("graphc.viz").joinpath("assets", name).read_text(encoding="utf-8")


def function_data(name: str, stages: Sequence[Stage], profile=None) -> dict:
    """One function of the explorer: its stages' data; `profile` (a Profile of it) colours
    the kernels of its "optimized" stage by their time."""
    out = []
    for stage in stages:
        times = None
        if profile is not None and stage.name == "optimized":
            times = kernel_times(Graph([*stage.outputs, *(v for _, v in stage.updates)]),
                                 profile)
        out.append(stage_data(stage, times))
    names = [s.name for s in stages]
    initial = next((s for s in STAGE_ORDER if s in names), names[0] if names else None)
    return {"name": name, "stages": out, "initial": initial}


def graph_stages(values: Node | Iterable[Node], updates=None) -> list[Stage]:
    """The one stage ("graph") of uncompiled graph values, what gc.grad built grouped."""
    outputs = (values,) if isinstance(values, Node) else tuple(values)
    for value in outputs:
        if not isinstance(value, Node):
            raise TypeError(f"explorer: expected graph values, got {type(value).__name__}")
    pairs = tuple(updates.items() if isinstance(updates, dict) else updates or ())
    return [Stage("graph", outputs, pairs, gradient_groups(outputs, pairs), "gradient")]


def page(functions: Sequence[dict], title: str = "graphc") -> str:
    """The explorer's HTML for functions made by `function_data`."""
    if not functions:
        raise ValueError("explorer: nothing to draw (no functions)")
    data = json.dumps({"title": title, "functions": list(functions)}, separators=(",", ":"))
    data = data.replace("</", "<\\/")  # never ends the <script> element early
    return _PAGE.format(title=html.escape(title), css=asset("explorer.css"), data=data,
                        dagre=asset("dagre.min.js"), explorer=asset("explorer.js"))


def explorer(items, title: str | None = None, profiles=None, updates=None) -> str:
    """The explorer's HTML for compiled functions (one, or a list; anything with `stages()`
    and `name`, such as gc.compile's result) or for graph values (one or a list, with their
    `updates`). profiles: {function index: Profile} colouring kernels by time."""
    if isinstance(items, Node) or (isinstance(items, (list, tuple)) and items
                                   and all(isinstance(i, Node) for i in items)):
        functions = [function_data("graph", graph_stages(items, updates))]
        return page(functions, title or "graphc graph")
    compiled = list(items) if isinstance(items, (list, tuple)) else [items]
    for item in compiled:
        if not hasattr(item, "stages"):
            raise TypeError(f"explorer: expected compiled functions or graph values, got "
                            f"{type(item).__name__}")
    functions = [function_data(item.name, item.stages(), (profiles or {}).get(k))
                 for k, item in enumerate(compiled)]
    return page(functions, title or ", ".join(item.name for item in compiled))


def iframe(page_html: str, height: int = 600) -> str:
    """The page inside an <iframe srcdoc>: how a notebook shows it (its scripts and styles
    stay out of the notebook's)."""
    return (f'<iframe srcdoc="{html.escape(page_html, quote=True)}" style="width: 100%; '
            f'height: {height}px; border: 1px solid #ddd" sandbox="allow-scripts"></iframe>')
