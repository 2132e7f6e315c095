"""Graph-to-graph optimization passes, one per file, run in order by `optimize`."""

from __future__ import annotations

from graphc.ir.program import Program
from graphc.passes.pipeline import PIPELINE
from graphc.passes.report import PassStats


def optimize(program: Program, stats: list | None = None) -> Program:
    """Run every pass of the pipeline over a program's results; with `stats`, append one
    `PassStats` per pass (what it changed, measured from the graphs)."""
    for run_pass in PIPELINE:
        before = program
        program = run_pass(program)
        if stats is not None:
            stats.append(PassStats.measure(run_pass.__name__, before, program))
    return program
