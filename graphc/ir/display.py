"""How a graph value shows itself in a notebook (Jupyter's `_repr_html_`/`_repr_svg_` on
Node). The drawing code lives in a layer above the IR (graphc/viz), which registers its
functions here when it is imported (the DSL imports it), so the IR imports no drawing."""

from __future__ import annotations

from collections.abc import Callable

_SHOW: dict[str, Callable] = {}


def register(mime: str, show: Callable) -> None:
    """Let `show(node)` give a node's picture as `mime` ("html" or "svg"): a str, or None
    when it cannot (Jupyter then shows the next form, down to the repr)."""
    _SHOW[mime] = show


def show(mime: str, node) -> str | None:
    """A node's picture as `mime`, or None when nothing registered can draw it."""
    draw = _SHOW.get(mime)
    return None if draw is None else draw(node)
