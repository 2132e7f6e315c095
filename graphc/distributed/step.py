"""A training step split where the gradients are complete, for data parallelism.

One process's step is two compiled functions with an all-reduce between them:

1. the gradient function: forward, loss and backward on this process's shard of the
   global batch; it writes each gradient, weighted by this shard's share of the batch,
   into its bucket (buckets.py) and returns the loss and the totals;
2. the buckets are all-reduced (summed) across the processes, one non-blocking MPI
   request per bucket, started in the order the backward completes them, together with
   one small request for the losses and totals;
3. the update function: the optimizer's update graph, reading the summed gradients from
   the buckets where `gc.grad` would stand; every process runs it on identical
   gradients, so the params stay identical without being sent again.

What overlaps: the gradient function is one native call, so every bucket is complete
only when it returns; the all-reduces start then, back to back, and overlap one another
(and, on a network, the transfers of one bucket the reduction of the next), not the
backward pass. The update waits for all of them.

Weighting: with `reduction="mean"` (a loss that is a mean over the batch), the gradient
is taken of loss * n_local / n_global, so the sum over processes is the gradient of the
mean over the whole global batch, even when the shards differ in size (the last batch
of an epoch); a process with an empty shard contributes zeros. The batch size of each
process is the length of the first input's axis 0; the sizes are summed by one small
all-reduce before the gradient function runs.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from graphc import dsl
from graphc.autodiff import grad
from graphc.compiler import compile as compile_graph
from graphc.distributed.buckets import DEFAULT_BUCKET_MB, Bucket, plan_buckets
from graphc.distributed.failure import DistributedError
from graphc.distributed.world import World
from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.nn.module import Module
from graphc.optim.optimizer import Optimizer

REDUCTIONS = ("mean", "sum")


@dataclass
class TrainingStep:
    """What a step builder returns: the graph of one training step.

    inputs: the gc.input values a step is called with; axis 0 of the first is the batch.
    loss: the scalar to minimize; reduction says whether it is a "mean" over the batch's
    samples (softmax_cross_entropy, mse_loss) or a "sum".
    optimizer: a graphc optimizer over the params to train.
    totals: named scalars to report, summed over the processes (e.g. correct answers).
    model: the Module, if any, whose param names key checkpoints (else params' names)."""

    inputs: Sequence[Node]
    loss: Node
    optimizer: Optimizer
    totals: Mapping[str, Node] = field(default_factory=dict)
    reduction: str = "mean"
    model: Module | None = None

    def check(self) -> None:
        """Raise TypeError/ValueError naming what in the step is not usable."""
        if not isinstance(self.optimizer, Optimizer):
            raise TypeError(f"TrainingStep: optimizer must be a graphc optimizer, got "
                            f"{type(self.optimizer).__name__}")
        inputs = list(self.inputs) if not isinstance(self.inputs, Node) else None
        if not inputs or any(not isinstance(i, Node) or i.op != "input" for i in inputs):
            raise TypeError(f"TrainingStep: inputs must be a non-empty list of gc.input "
                            f"values, got {self.inputs!r}")
        if not inputs[0].shape:
            raise ValueError(f"TrainingStep: the first input '{inputs[0].name}' is a scalar; "
                             "its axis 0 must be the batch")
        for name, node in {"loss": self.loss, **{f"totals[{k!r}]": v
                                                 for k, v in self.totals.items()}}.items():
            if not isinstance(node, Node) or node.shape != ():
                shape = getattr(node, "shape", type(node).__name__)
                raise ValueError(f"TrainingStep: {name} must be a scalar graph value, got "
                                 f"{shape}")
        if self.loss.dtype.kind != "f":
            raise TypeError(f"TrainingStep: loss must be float, got {self.loss.dtype.name}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"TrainingStep: reduction must be one of {REDUCTIONS}, got "
                             f"{self.reduction!r}")
        if self.model is not None and not isinstance(self.model, Module):
            raise TypeError(f"TrainingStep: model must be a graphc.nn Module or None, got "
                            f"{type(self.model).__name__}")


@dataclass
class Timings:
    """Seconds spent in each part of the steps so far (summed) and the steps counted."""

    gradient: float = 0.0   # the gradient function (forward, loss, backward)
    allreduce: float = 0.0  # waiting for the all-reduces (batch sizes and buckets)
    update: float = 0.0     # the update function (the optimizer)
    compute_cpu: float = 0.0  # CPU seconds of this process in the two functions: below
    steps: int = 0            # gradient + update when others' processes take CPU time

    def per_step(self) -> dict[str, float]:
        n = max(1, self.steps)
        return {"gradient": self.gradient / n, "allreduce": self.allreduce / n,
                "update": self.update / n, "compute_cpu": self.compute_cpu / n}


class SplitStep:
    """A TrainingStep compiled as a gradient function and an update function, with the
    gradients all-reduced in buckets between them (see the module docstring)."""

    def __init__(self, spec: TrainingStep, world: World, bucket_mb: float = DEFAULT_BUCKET_MB,
                 backend: str = "llvm", threads: int | None = None):
        spec.check()
        if isinstance(bucket_mb, bool) or not isinstance(bucket_mb, (int, float)) \
                or not bucket_mb > 0:
            raise ValueError(f"DataParallel: bucket_mb must be a number > 0, got {bucket_mb!r}")
        self.spec, self.world = spec, world
        self.inputs = tuple(spec.inputs)
        self.threads = default_threads(world) if threads is None else threads
        # Never tiered (GRAPHC_TIERED): every rank must write the same bits into its params,
        # and which calls a tiered function interprets differs from rank to rank.
        options = {"threads": self.threads, "tiered": False} if backend == "llvm" else {}
        params = list(spec.optimizer.params)
        self.scale = dsl.param("data_parallel.scale", np.ones((), spec.loss.dtype))
        grads = grad(spec.loss * self.scale, params)
        self.buckets: list[Bucket] = plan_buckets(params, grads,
                                                  max(1, int(bucket_mb * 1e6)))
        grad_params = {slot.param: slot.grad for b in self.buckets for slot in b.slots}
        updates = {grad_params[p]: g for p, g in zip(params, grads)}
        self.gradient_fn = compile_graph(self.inputs, [spec.loss, *spec.totals.values()],
                                         updates=updates, backend=backend,
                                         **options)
        self.update_fn = compile_graph(
            [], [], updates=spec.optimizer.step_updates([grad_params[p] for p in params]),
            backend=backend, **options)
        internal = set(grad_params.values()) | {self.scale}
        self.state = [p for p in _params_of(self.gradient_fn, self.update_fn)
                      if p not in internal]
        self.steps = 0  # steps taken: the call count the random ops draw from
        self.timings = Timings()
        self.broadcast_state()

    # ----- keeping the processes identical ----------------------------------------------
    def broadcast_state(self) -> None:
        """Make every process's params and optimizer state rank 0's (and the step
        count), after checking that every process built the same step."""
        mine = self.signature()
        theirs = self.world.broadcast_object(mine, what="the step's signature")
        if theirs != mine:
            first = next((k for k, (a, b) in enumerate(zip(mine, theirs)) if a != b),
                         min(len(mine), len(theirs)))
            raise DistributedError(
                f"rank {self.world.rank} built another training step than rank 0: entry "
                f"{first} of its (param name, shape, dtype) list is "
                f"{mine[first] if first < len(mine) else 'missing'} here, "
                f"{theirs[first] if first < len(theirs) else 'missing'} on rank 0; every "
                "process must build the same model and optimizer")
        self.world.broadcast_many([p.value for p in self.state],
                                  what="the broadcast of the params from rank 0")
        self.steps = int(self.world.broadcast_object(self.steps, what="the step count"))

    def signature(self) -> list[tuple]:
        """(name, shape, dtype) of every state param, then of every bucket's gradients."""
        state = [(p.name, tuple(p.shape), p.dtype.str) for p in self.state]
        return state + [(b.index, s.param.name, s.offset) for b in self.buckets
                        for s in b.slots]

    def in_sync(self) -> bool:
        """Whether every process holds the same bits in every param (a checksum of each
        compared across processes; the same answer on every process)."""
        sums = np.array([zlib.crc32(np.ascontiguousarray(p.value).view(np.uint8))
                         for p in self.state] or [0], np.int64)
        high = self.world.allreduce(sums, "max", "the param checksums")
        low = self.world.allreduce(sums, "min", "the param checksums")
        return bool(np.array_equal(high, low))

    # ----- one step ---------------------------------------------------------------------
    def __call__(self, *arrays) -> dict[str, float]:
        """One step on this process's shard; returns the loss over the global batch
        (a mean or a sum, as the step's reduction) and the totals summed over processes.
        Every process must call it, the same number of times."""
        world, timings = self.world, self.timings
        arrays, _ = self.gradient_fn.check_arguments(arrays)
        count = len(arrays[0])
        start = time.perf_counter()
        total = int(world.allreduce(np.array([count], np.int64),
                                    what="the all-reduce of the batch sizes")[0])
        timings.allreduce += time.perf_counter() - start
        if total == 0:
            raise ValueError("DataParallel.step: the global batch is empty (every process "
                             "got 0 samples)")
        share = count / total if self.spec.reduction == "mean" else 1.0
        start, cpu = time.perf_counter(), time.process_time()
        if count:
            self.scale.value = np.array(share, self.scale.dtype)
            self.gradient_fn.step = self.steps * world.size + world.rank
            outputs = self.gradient_fn(*arrays)
        else:  # an empty shard (the end of an epoch): it contributes nothing
            for bucket in self.buckets:
                bucket.buffer[...] = 0
            outputs = [0.0] * (1 + len(self.spec.totals))
        stats = np.array([float(v) for v in outputs], np.float64)
        stats[0] *= share
        timings.gradient += time.perf_counter() - start
        timings.compute_cpu += time.process_time() - cpu
        start = time.perf_counter()
        requests = [world.start_allreduce(b.buffer) for b in self.buckets]
        requests.append(world.start_allreduce(stats))
        world.wait(requests, f"the all-reduce of the gradients ({len(self.buckets)} "
                             "bucket(s))")
        timings.allreduce += time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        self.update_fn()
        timings.update += time.perf_counter() - start
        timings.compute_cpu += time.process_time() - cpu
        timings.steps += 1
        self.steps += 1
        return {"loss": float(stats[0]), **dict(zip(self.spec.totals, stats[1:].tolist()))}

    @property
    def gradient_bytes(self) -> int:
        """The bytes all-reduced each step (the buckets, with their alignment gaps)."""
        return sum(b.nbytes for b in self.buckets)


def default_threads(world: World) -> int:
    """Threads per process: the CPUs it is bound to, if the launcher bound it to some
    (`mpiexec -bind-to core`), else this machine's CPUs shared among the job's processes
    on it (more would make their threads wait for each other at every barrier)."""
    machine = os.cpu_count() or 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = machine
    return cpus if cpus < machine else max(1, cpus // world.local_size)


def _params_of(*functions) -> list[Node]:
    """The params the compiled functions read or write, in a deterministic order."""
    seen: dict[Node, None] = {}
    for fn in functions:
        for p in Graph(fn.source.results).leaves("param"):
            seen.setdefault(p)
        for p, _ in fn.source.updates:
            seen.setdefault(p)
    return list(seen)
