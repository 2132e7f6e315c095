"""The reference backend: interprets the graph node by node with each op's NumPy reference."""

from __future__ import annotations

import time

import numpy as np

from graphc.backends.base import Source
from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.ir.op import Env, get_op, is_kernel
from graphc.ir.program import Program
from graphc.profile import KernelTime, Profile
from graphc.shapes import evaluate, shape_str


class NumpyRunner:
    def __init__(self, program: Program):
        self.program = program
        graph = Graph(program.results)
        self.nodes = graph.nodes
        self.ops = [get_op(n.op) for n in self.nodes]
        keep = set(program.results)
        # After node k runs, the values in release[k] are needed by nobody else.
        last_use: dict[Node, int] = {}
        for k, node in enumerate(self.nodes):
            for i in node.inputs:
                last_use[i] = k
        self.release: list[list[Node]] = [[] for _ in self.nodes]
        for node, k in last_use.items():
            if node not in keep:
                self.release[k].append(node)
        self._shape_caches: dict[frozenset, dict] = {}  # concrete shapes, per binding

    def run(self, arguments, binding, step, timings: list[float] | None = None):
        """The results; with `timings` (one float per node), each node's seconds are
        added to its entry."""
        shapes = self._shape_caches.setdefault(frozenset(binding.items()), {})
        env = Env(binding, step, dict(zip(self.program.inputs, arguments)), shapes)
        values: dict[Node, np.ndarray] = {}
        for k, (node, op, release) in enumerate(zip(self.nodes, self.ops, self.release)):
            started = time.perf_counter() if timings is not None else 0.0
            out = op.numpy(node, [values[i] for i in node.inputs], env)
            if timings is not None:
                timings[k] += time.perf_counter() - started
            for value, (dtype, shape) in zip(_parts(out), _expected(node)):
                expected = env.shape(shape)
                if value.shape != expected or value.dtype != dtype:
                    raise RuntimeError(f"internal error: {node.op} produced "
                                       f"{value.dtype}{value.shape}, expected "
                                       f"{dtype}{shape_str(expected)}")
            values[node] = out
            for dead in release:
                del values[dead]
        return [values[n] for n in self.program.results]

    def memory_report(self) -> dict:
        """Nothing: the interpreter plans no memory (NumPy allocates each value)."""
        return {}

    def compiled(self, binding) -> Program:
        """The program it interprets (the same for every binding)."""
        return self.program

    def profile(self, arguments, binding, step, calls: int) -> Profile:
        """Per-node times of `calls` runs (leaves and views take no time and are left out)."""
        timings = [0.0] * len(self.nodes)
        for _ in range(calls):
            self.run(list(arguments), binding, step, timings)
        return Profile("numpy", calls, tuple(
            KernelTime(k, node.op, evaluate(node.shape, binding), seconds / calls)
            for k, (node, seconds) in enumerate(zip(self.nodes, timings)) if is_kernel(node)))


def _parts(out) -> tuple[np.ndarray, ...]:
    """The arrays an op produced: one, or a tuple (a multi-output op's outputs)."""
    return out if isinstance(out, tuple) else (out,)


def _expected(node: Node) -> list[tuple[np.dtype, tuple]]:
    """(dtype, shape) of each array a node produces, matching `_parts`."""
    types = get_op(node.op).output_types(node)
    return [(node.dtype, node.shape)] if types is None else list(types)


class NumpyBackend:
    name = "numpy"

    def prepare(self, source: Source) -> NumpyRunner:
        unknown = set(source.options) - {"threads"}
        if unknown:
            raise TypeError(f"numpy backend: unknown options {sorted(unknown)}")
        return NumpyRunner(source.optimized())
