"""The thread-scheduling policy: which steps run on one thread. A step too small to share
among threads runs on thread 0 alone, consecutive ones in a run with no barrier between
them (a barrier, and the other threads' caches, would cost more than they save)."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.schedule.plan import Plan, Step

SERIAL_BELOW = 1 << 14  # elements a kernel touches, below which one thread runs it
SERIAL_GEMM_BELOW = 1 << 17  # multiply-adds of a matmul below which one thread runs it
_GEMM_OPS = frozenset({"matmul", "fused_matmul"})
_OWN_SPLIT = frozenset({"conv2d", "fused_conv2d", "conv2d_grad_input", "conv2d_grad_weight"})


def serial(plan: Plan, step: Step) -> bool:
    """Whether a step is too small to share among threads: a barrier (and the other
    threads' caches) would cost more than it saves. The choice depends on shapes only,
    and every kernel computes the same bits on any number of threads."""
    node = step.node if step.node is not None else step.source
    if step.node is not None and node.op in _OWN_SPLIT:
        return False
    out = int(np.prod(plan.shape(node), dtype=np.int64))
    if step.node is not None and node.op in _GEMM_OPS:
        depth = plan.shape(node.inputs[0])[-1] if plan.shape(node.inputs[0]) else 1
        return out * depth < SERIAL_GEMM_BELOW
    inputs = node.inputs if step.node is not None else ()
    touched = out + sum(int(np.prod(plan.shape(i), dtype=np.int64)) for i in inputs)
    return touched < SERIAL_BELOW


def serial_runs(plan: Plan) -> list[list[Step]]:
    """The steps in order, consecutive serial steps grouped (one barrier after each
    group)."""
    groups: list[list[Step]] = []
    for step in plan.steps:
        alone = serial(plan, step)
        if alone and groups and serial(plan, groups[-1][-1]):
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups
