"""What the optimizer did, measured from the graphs: kernels, per-pass statistics, and
drawings with each fused group as a cluster.

A *kernel* is a node that does work at run time: its op's kind (graphc/ir/op.py) is
neither a leaf (input, param, constant, dim_value: values that exist before the call) nor
a view (reshape, stop_gradient, the identity at run time, and group_output, one output of
the fused_group kernel that computes it). Every other node - elementwise, fused, a
reduction, matmul, broadcast_to, random_uniform, ... - is one loop nest a backend runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.ir.op import get_op, is_kernel
from graphc.ir.program import Program
from graphc.ir.provenance import members_of, origins
from graphc.passes.pipeline import PIPELINE
from graphc.passes.reduce_fusion import reduce_fusion
from graphc.viz import to_dot
from graphc.viz.explorer import Stage, gradient_groups


def kernels(graph: Graph) -> list[Node]:
    """The kernels of a graph, in topological (run) order."""
    return [n for n in graph.nodes if is_kernel(n)]


def count_kernels(program: Program) -> int:
    return len(kernels(program.graph))


@dataclass(frozen=True)
class Census:
    """What PassStats counts in one program: nodes, kernels, fused kernels of each op."""

    nodes: int
    kernels: int
    fused: Counter

    @classmethod
    def of(cls, program: Program) -> Census:
        graph = program.graph
        return cls(len(graph), len(kernels(graph)),
                   Counter(n.op for n in graph.nodes if get_op(n.op).fused))


@dataclass(frozen=True)
class PassStats:
    """What one pass changed: node and kernel counts before and after, and how many more
    fused kernels of each op there are after it than before."""

    name: str
    nodes_before: int
    nodes_after: int
    kernels_before: int
    kernels_after: int
    created: dict

    @classmethod
    def between(cls, name: str, before: Census, after: Census) -> PassStats:
        """The statistics of a pass from the censuses of the programs before and after it
        (a pipeline takes one census per program, not two)."""
        created = after.fused - before.fused
        return cls(name, before.nodes, after.nodes, before.kernels, after.kernels,
                   {op: k for op, k in sorted(created.items()) if k > 0})

    def line(self) -> str:
        made = ", ".join(f"{count} {op}" for op, count in self.created.items())
        return (f"{self.name:<18} nodes {self.nodes_before:>4} -> {self.nodes_after:<4} "
                f"kernels {self.kernels_before:>4} -> {self.kernels_after:<4}"
                + (f" created {made}" if made else ""))


def format_report(stats: list[PassStats], program: Program, name: str | None = None) -> str:
    """The text of `Executable.report()`: one line per pass, then the kernels left."""
    lines = ["graphc optimization report" + (f": {name}" if name else "")]
    if not stats:
        lines.append("(optimize=False: no passes ran)")
    lines += [s.line() for s in stats]
    left = Counter(n.op for n in kernels(program.graph))
    lines.append(f"kernels left: {sum(left.values())} ("
                 + ", ".join(f"{op} {count}" for op, count in sorted(left.items())) + ")")
    return "\n".join(lines)


def _prefusion(executable) -> Program:
    """The program as the first fusion pass got it (the passes are deterministic, and
    hash-consing gives back the very same nodes)."""
    program = executable.source
    for run_pass in PIPELINE[:PIPELINE.index(reduce_fusion)]:
        program = run_pass(program)
    return program


def fusion_dot(executable, stage: str = "after", name: str = "graphc") -> str:
    """DOT text of a compiled program with each fused kernel as a cluster: "before" draws
    the graph fusion started from, each kernel's member ops boxed together (an op computed
    by several kernels is drawn in the first); "after" draws the graph that runs, each
    fused kernel boxed and titled with the ops it computes."""
    program, clusters = fusion_clusters(executable, stage)
    return to_dot(list(program.outputs), name, clusters=clusters, updates=program.updates)


def fusion_clusters(executable, stage: str = "after") -> tuple[Program, dict[str, list[Node]]]:
    """The program fusion_dot draws for `stage` ("before" or "after") and its clusters,
    {"<kernel op> #k: <ops>": nodes} (none when the function was not optimized)."""
    if stage not in ("before", "after"):
        raise ValueError(f"fusion_dot: stage must be 'before' or 'after', got {stage!r}")
    final = executable.program
    if not executable.pass_stats:
        return final, {}
    program = _prefusion(executable) if stage == "before" else final
    graph = program.graph
    clusters: dict[str, list[Node]] = {}
    seen: set[Node] = set()
    running = final.graph
    for k, kernel in enumerate(n for n in running.nodes if get_op(n.op).fused):
        members = members_of(kernel)
        ops = Counter(m.op for m in members)
        title = f"{kernel.op} #{k}: " + ", ".join(f"{op}" + (f" x{c}" if c > 1 else "")
                                                 for op, c in sorted(ops.items()))
        if stage == "after":  # a group with its projections (its outputs) in one box
            clusters[title] = [kernel] + [u for u in running.consumers[kernel]
                                          if u.op == "group_output"]
            continue
        found = (next((o for o in origins(m) if o in graph), None) for m in members)
        boxed = list(dict.fromkeys(m for m in found if m is not None and m not in seen))
        seen.update(boxed)
        if boxed:
            clusters[title] = boxed
    return program, clusters


def explorer_stages(executable) -> list[Stage]:
    """The stages the HTML explorer shows of a compiled function: "forward" (its outputs,
    as written), "backward" (with the update values; what gc.grad built is one collapsible
    group), "optimized" (what runs) and, when it was optimized, "fused" (the graph fusion
    started from, each fused kernel's ops a collapsible group)."""
    source, final = executable.source, executable.program
    stages = [Stage("forward", source.outputs),
              Stage("backward", source.outputs, source.updates,
                    gradient_groups(source.outputs, source.updates), "gradient"),
              Stage("optimized", final.outputs, final.updates)]
    if executable.pass_stats:
        program, clusters = fusion_clusters(executable, "before")
        stages.append(Stage("fused", program.outputs, program.updates, clusters, "kernel"))
    return stages
