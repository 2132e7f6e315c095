"""Graph-to-graph optimization passes, one per file, run in order by `optimize`."""

from __future__ import annotations

from collections.abc import Callable

from graphc.ir.program import Program
from graphc.passes.constant_folding import constant_folding
from graphc.passes.cse import cse
from graphc.passes.epilogue import epilogue
from graphc.passes.fusion import fusion
from graphc.passes.group_fusion import group_fusion
from graphc.passes.reduce_fusion import reduce_fusion
from graphc.passes.simplify import simplify

PIPELINE: list[Callable[[Program], Program]] = [
    constant_folding, cse, simplify, reduce_fusion, fusion, group_fusion, epilogue,
]


def optimize(program: Program, stats: list | None = None) -> Program:
    """Run every pass of the pipeline over a program's results; with `stats`, append one
    `PassStats` per pass (what it changed, measured from the graphs)."""
    for run_pass in PIPELINE:
        before = program
        program = run_pass(program)
        if stats is not None:
            from graphc.passes.report import PassStats
            stats.append(PassStats.measure(run_pass.__name__, before, program))
    return program
