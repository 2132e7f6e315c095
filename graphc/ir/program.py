"""What gc.compile hands to a backend: inputs, outputs and param updates over one graph."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from graphc.ir.graph import Graph
from graphc.ir.node import Node


@dataclass(frozen=True)
class Program:
    """A function of `inputs` computing `outputs`, then writing each update into its param.

    Every update value is computed from the params' old values before any is written."""

    inputs: tuple[Node, ...]
    outputs: tuple[Node, ...]
    updates: tuple[tuple[Node, Node], ...]

    @property
    def results(self) -> tuple[Node, ...]:
        """Everything the function computes: the outputs, then the update values."""
        return self.outputs + tuple(value for _, value in self.updates)

    @functools.cached_property
    def graph(self) -> Graph:
        """The graph of the results, built on first use (each pass reads it, and the
        statistics of the pass before it read it too)."""
        return Graph(self.results)

    def default_name(self) -> str:
        """A name for a compiled function that has none: what its outputs are (an input's
        or param's name, else the op), joined by "_", then "_step" if it updates params;
        e.g. "mean_step" for a training step returning a mean loss, "matmul" for a
        prediction. At most three outputs are named ("_etc" for more)."""
        parts = [node.name or node.op for node in self.outputs[:3]]
        if len(self.outputs) > 3:
            parts.append("etc")
        if self.updates:
            parts.append("step")
        return "_".join(parts) or "function"

    def replace_results(self, results: list[Node]) -> Program:
        """The same program computing `results` (outputs, then update values) instead."""
        k = len(self.outputs)
        updates = tuple((param, new) for (param, _), new in zip(self.updates, results[k:]))
        return Program(self.inputs, tuple(results[:k]), updates)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def check_name(name) -> str:
    """A function's name as given to gc.compile: a non-empty str of printable characters
    (TypeError/ValueError otherwise)."""
    if not isinstance(name, str):
        raise TypeError(f"compile: name must be a str, got {type(name).__name__} {name!r}")
    if not name.strip() or not name.isprintable():
        raise ValueError(f"compile: name must be a non-empty printable str, got {name!r}")
    return name


def file_stem(name: str) -> str:
    """`name` made safe for a file name: each run of characters other than letters,
    digits, "_", ".", "+" and "-" becomes "_" (and a leading "." is dropped)."""
    return _UNSAFE.sub("_", name).lstrip(".") or "function"
