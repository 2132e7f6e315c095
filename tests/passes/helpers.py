"""Shared helpers for the pass tests: build a Program, run it on the NumPy reference."""

from __future__ import annotations

import numpy as np

from graphc.backends.numpy import NumpyRunner
from graphc.ir.graph import Graph
from graphc.ir.program import Program


def program(outputs, inputs=(), updates=()) -> Program:
    return Program(tuple(inputs), tuple(outputs), tuple(updates))


def run(prog: Program, *arrays, binding=None) -> list[np.ndarray]:
    """The program's results on the NumPy reference backend."""
    return NumpyRunner(prog).run(list(arrays), binding or {}, 0)


def ops(prog: Program) -> list[str]:
    """The ops of the program's graph in topological order (leaves included)."""
    return [n.op for n in Graph(prog.results).nodes]
