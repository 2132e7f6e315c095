"""What gc.compile hands to a backend: inputs, outputs and param updates over one graph."""

from __future__ import annotations

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

    @property
    def graph(self) -> Graph:
        return Graph(self.results)

    def replace_results(self, results: list[Node]) -> Program:
        """The same program computing `results` (outputs, then update values) instead."""
        k = len(self.outputs)
        updates = tuple((param, new) for (param, _), new in zip(self.updates, results[k:]))
        return Program(self.inputs, tuple(results[:k]), updates)
