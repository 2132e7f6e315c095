"""Graph-to-graph optimization passes, one per file, run in order by `optimize`."""

from __future__ import annotations

from graphc.ir.program import Program
from graphc.passes.pipeline import PIPELINE
from graphc.passes.report import Census, PassStats


def optimize(program: Program, stats: list | None = None) -> Program:
    """Run every pass of the pipeline over a program's results; with `stats`, append one
    `PassStats` per pass (what it changed, measured from the graphs)."""
    census = Census.of(program) if stats is not None else None
    for run_pass in PIPELINE:
        program = run_pass(program)
        if stats is not None:
            after = Census.of(program)
            stats.append(PassStats.between(run_pass.__name__, census, after))
            census = after
    return program
