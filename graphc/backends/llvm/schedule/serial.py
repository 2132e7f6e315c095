"""The thread-scheduling policy: which steps run on one thread. A step too small to share
among threads runs on thread 0 alone, consecutive ones in a run with no barrier between
them (a barrier, and the other threads' caches, would cost more than they save). What a
step's lowering declares decides: `splits_own_work` (never alone) and `work` (its own
measure of the work)."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.schedule.plan import Plan, Step

# Work (elements a kernel touches: its inputs and output, unless its lowering measures
# its `work` otherwise) below which one thread runs a step.
SERIAL_BELOW = 1 << 14


def serial(plan: Plan, step: Step, table: dict) -> bool:
    """Whether a step is too small to share among threads: a barrier (and the other
    threads' caches) would cost more than it saves. The choice depends on shapes only,
    and every kernel computes the same bits on any number of threads."""
    node = step.node if step.node is not None else step.source
    lowering = table[node.op] if step.node is not None else None
    if lowering is not None and lowering.splits_own_work:
        return False
    if lowering is not None and lowering.work is not None:
        shapes = [plan.shape(i) for i in node.inputs] + [plan.shape(node)]
        return lowering.work(node, shapes) < SERIAL_BELOW
    out = int(np.prod(plan.shape(node), dtype=np.int64))
    inputs = node.inputs if step.node is not None else ()
    touched = out + sum(int(np.prod(plan.shape(i), dtype=np.int64)) for i in inputs)
    return touched < SERIAL_BELOW


def serial_runs(plan: Plan, table: dict) -> list[list[Step]]:
    """The steps in order, consecutive serial steps grouped (one barrier after each
    group)."""
    groups: list[list[Step]] = []
    for step in plan.steps:
        alone = serial(plan, step, table)
        if alone and groups and serial(plan, groups[-1][-1], table):
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups
