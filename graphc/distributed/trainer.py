"""Data-parallel training with a gc.train.Trainer, through its public interface only.

`DataParallel(trainer).fit(x, y, ...)` runs the Trainer's own loop (its batching,
augmentation, schedule, early stopping and history) with three of its compiled
functions replaced once it has compiled them:

- `step_fn` by ShardedStep: called with a global batch, it trains on this process's
  slice of it (SplitStep) and returns the loss and correct count of the whole global
  batch, so the Trainer's records are those of the whole data;
- `eval_fn` by ShardedEval: evaluates this process's slice of each evaluation batch and
  sums the losses and counts across processes (each process does 1/N of the work);
- `predict_fn` by the same graph compiled with this process's share of the CPUs.

Every process is given the whole data and iterates the same global batches (the same
seed); the progress bar shows on rank 0 only, and only rank 0 writes checkpoints. A
training transform (augmentation) is applied by ShardedStep to this process's slice
only, with a generator seeded by (seed, step, rank): each process augments 1/N of the
batch, and a resumed run (the step count is in the checkpoint) draws the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from graphc import dsl
from graphc.compiler import compile as compile_graph
from graphc.data.batching import shard_bounds
from graphc.distributed.step import SplitStep, TrainingStep
from graphc.distributed.world import World
from graphc.ir.node import Node

if TYPE_CHECKING:
    from graphc.train import Trainer

# What DataParallel reads of a Trainer (it does not import graphc.train, its sibling).
TRAINER_ATTRIBUTES = ("model", "optimizer", "loss_fn", "accuracy", "backend", "compile",
                      "fit", "evaluate", "save", "load", "state_arrays")


def is_trainer(obj) -> bool:
    """Whether obj offers the Trainer interface DataParallel drives."""
    return all(hasattr(obj, name) for name in TRAINER_ATTRIBUTES) and not isinstance(obj, type)


def trainer_step(trainer: Trainer) -> TrainingStep:
    """The Trainer's training graph as a TrainingStep (built on the inputs its compile
    made: the same nodes, as graph values are shared)."""
    output = trainer.model(trainer.x, training=True)
    totals = {"correct": correct(output, trainer.y)} if trainer.accuracy else {}
    return TrainingStep([trainer.x, trainer.y], trainer.loss_fn(output, trainer.y),
                        trainer.optimizer, totals, "mean", trainer.model)


def correct(output: Node, target: Node) -> Node:
    """How many argmaxes over the last axis equal the targets (a float32 count), as the
    Trainer counts them."""
    hits = dsl.equal(dsl.argmax(output, -1), dsl.cast(target, "int64"))
    return dsl.sum(dsl.cast(hits, "float32"))


class ShardedStep:
    """Stands in for `trainer.step_fn`: called with a global batch (x, y), trains on this
    process's slice (transformed, if fit was given a transform); returns [loss of the
    global batch, correct answers in it]."""

    def __init__(self, split: SplitStep, world: World):
        self.split, self.world = split, world
        self.transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None
        self.seed = 0

    @property
    def step(self) -> int:
        """Steps taken (the Trainer saves and restores it as its step function's count)."""
        return self.split.steps

    @step.setter
    def step(self, value: int) -> None:
        self.split.steps = int(value)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        start, stop = shard_bounds(len(x), self.world.rank, self.world.size)
        x, y = x[start:stop], y[start:stop]
        if self.transform is not None and len(x):
            rng = np.random.default_rng([self.seed, self.split.steps, 1, self.world.rank])
            x = self.transform(x, rng)
        result = self.split(x, y)
        return [result["loss"], *(result[k] for k in self.split.spec.totals)]


class ShardedEval:
    """Stands in for `trainer.eval_fn`: evaluates this process's slice of a batch (x, y)
    and returns [mean loss over the whole batch, correct answers in it] (summed across
    processes; a slice may be empty)."""

    def __init__(self, function, world: World, outputs: int):
        self.function, self.world, self.outputs = function, world, outputs

    def __call__(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        start, stop = shard_bounds(len(x), self.world.rank, self.world.size)
        values = np.zeros(self.outputs, np.float64)
        if stop > start:
            values[:] = [float(v) for v in self.function(x[start:stop], y[start:stop])]
            values[0] *= stop - start
        totals = self.world.allreduce(values, what="the sum of the evaluation metrics")
        return [totals[0] / len(x), *totals[1:]]


class TrainerParallel:
    """A Trainer made data-parallel: compiled on first use (when the data's shapes are
    known), then its step, evaluation and prediction functions swapped (module doc)."""

    def __init__(self, trainer: Trainer, world: World, bucket_mb: float,
                 threads: int | None):
        self.trainer, self.world = trainer, world
        self.bucket_mb, self.threads = bucket_mb, threads
        self.split: SplitStep | None = None

    def prepare(self, x: np.ndarray, y: np.ndarray) -> None:
        trainer = self.trainer
        trainer.compile(np.asarray(x), np.asarray(y))
        if self.split is not None:
            return
        steps = trainer.step_fn.step  # restored by a checkpoint loaded before compiling
        split = SplitStep(trainer_step(trainer), self.world, self.bucket_mb, trainer.backend,
                          self.threads)
        split.steps = steps
        options = {"threads": split.threads} if trainer.backend == "llvm" else {}
        output = trainer.model(trainer.x, training=False)
        outputs = [trainer.loss_fn(output, trainer.y)]
        if trainer.accuracy:
            outputs.append(correct(output, trainer.y))
        evaluate = compile_graph([trainer.x, trainer.y], outputs, backend=trainer.backend,
                                 **options)
        trainer.predict_fn = compile_graph([trainer.x], output, backend=trainer.backend,
                                           **options)
        trainer.eval_fn = ShardedEval(evaluate, self.world, len(outputs))
        trainer.step_fn = ShardedStep(split, self.world)
        self.split = split

    def fit(self, x, y, *, checkpoint_path=None, progress: bool = True, transform=None,
            seed: int = 0, **options):
        """Trainer.fit on every process; progress bar and checkpoints on rank 0 only; the
        transform applied to each process's slice (the module docstring)."""
        self.prepare(x, y)
        main = self.world.is_main
        step = self.trainer.step_fn
        step.transform, step.seed = transform, seed
        try:
            history = self.trainer.fit(x, y, checkpoint_path=checkpoint_path if main else None,
                                       progress=progress and main, seed=seed, **options)
        finally:
            step.transform = None
        self.world.barrier("the end of fit")  # rank 0's last checkpoint is written
        return history

    def evaluate(self, x, y, batch_size: int = 512) -> dict[str, float]:
        self.prepare(x, y)
        return self.trainer.evaluate(x, y, batch_size)
