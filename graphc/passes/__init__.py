"""Graph-to-graph optimization passes, one per file, run in order by `optimize`."""

from __future__ import annotations

from graphc.program import Program

PIPELINE: list = []


def optimize(program: Program) -> Program:
    """Run every pass of the pipeline over a program's results."""
    for run_pass in PIPELINE:
        program = run_pass(program)
    return program
