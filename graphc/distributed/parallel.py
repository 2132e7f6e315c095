"""DataParallel: one model trained by several processes, each on its slice of every
global batch, with identical params after every step.

    world = gc.distributed.init()
    ddp = gc.distributed.DataParallel(build)       # build() returns a TrainingStep
    batches = gc.data.Batches(x, y, batch_size=64, rank=world.rank, world_size=world.size)
    for xb, yb in batches:
        ddp.step(xb, yb)                             # {"loss": ..., totals...}

or, with the Trainer's loop: `DataParallel(trainer).fit(x, y, epochs=..., ...)`.
Launch with `mpiexec -n N python script.py`; alone, the same script trains as usual.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from graphc import checkpoint
from graphc.distributed.buckets import DEFAULT_BUCKET_MB, Bucket
from graphc.distributed.failure import DistributedError
from graphc.distributed.step import SplitStep, Timings, TrainingStep
from graphc.distributed.trainer import TrainerParallel, is_trainer
from graphc.distributed.world import World, init
from graphc.ir.node import Node

COUNTERS = ("trainer/epoch", "trainer/step")  # as gc.train.Trainer's checkpoints
COUNTER_BYTES = 16
# Errors rank 0 may meet loading a checkpoint, raised again as such on the other ranks.
_SHARED_ERRORS = {cls.__name__: cls for cls in (
    checkpoint.CheckpointError, FileNotFoundError, IsADirectoryError, PermissionError,
    OSError, ValueError, TypeError, KeyError)}


class DataParallel:
    """Data-parallel training of a step builder's TrainingStep or of a gc.train.Trainer.

    source: a function of no arguments returning a TrainingStep (called once, here), a
    TrainingStep, or a Trainer (compiled at its first fit or evaluate, when the data's
    shapes are known). world: from gc.distributed.init() (called if not given).
    bucket_mb: the most megabytes (10^6 bytes) of gradients per all-reduce buffer.
    backend: "llvm" or "numpy" (a Trainer keeps its own). threads: per process (default:
    the CPUs the process is bound to, else this machine's CPUs over its processes).

    Rank 0's params and optimizer state are broadcast to every process when the step is
    built, so every process starts (and, stepping on identical averaged gradients,
    stays) identical. Every process must make the same calls in the same order."""

    def __init__(self, source: Callable[[], TrainingStep] | TrainingStep | object,
                 world: World | None = None, *, bucket_mb: float = DEFAULT_BUCKET_MB,
                 backend: str = "llvm", threads: int | None = None):
        self.world = world if world is not None else init()
        self.epoch = 0  # saved in checkpoints, for loops that count epochs
        self._trainer: TrainerParallel | None = None
        self._split: SplitStep | None = None
        if is_trainer(source):
            self._trainer = TrainerParallel(source, self.world, bucket_mb, threads)
            return
        spec = source() if callable(source) and not isinstance(source, TrainingStep) \
            else source
        if not isinstance(spec, TrainingStep):
            raise TypeError("DataParallel: expected a step builder (a function returning a "
                            "gc.distributed.TrainingStep), a TrainingStep or a "
                            f"gc.train.Trainer; got {_describe(source)}")
        self._split = SplitStep(spec, self.world, bucket_mb, backend, threads)

    # ----- stepping -------------------------------------------------------------------
    @property
    def split(self) -> SplitStep:
        """The compiled gradient and update functions and their buckets."""
        if self._split is not None:
            return self._split
        if self._trainer is not None and self._trainer.split is not None:
            return self._trainer.split
        raise RuntimeError("DataParallel: the Trainer's step is compiled at its first fit "
                           "or evaluate, when the data's shapes are known")

    def step(self, *arrays) -> dict[str, float]:
        """One training step on this process's shard of the global batch (one array per
        input of the step); returns {"loss": the loss of the global batch, **totals}."""
        return self.split(*arrays)

    @property
    def buckets(self) -> list[Bucket]:
        return self.split.buckets

    @property
    def timings(self) -> Timings:
        """Seconds spent computing gradients, waiting for all-reduces, and updating."""
        return self.split.timings

    def in_sync(self) -> bool:
        """Whether every process holds exactly the same params (compared by checksum)."""
        return self.split.in_sync()

    # ----- the Trainer's loop -----------------------------------------------------------
    def fit(self, x, y, **options):
        """Trainer.fit over the whole (x, y) given to every process, each training on its
        slice of every global batch of `batch_size`; the progress bar on rank 0 only, and
        checkpoint_path written by rank 0 only. Returns the Trainer's History."""
        return self._need_trainer("fit").fit(x, y, **options)

    def evaluate(self, x, y, batch_size: int = 512) -> dict[str, float]:
        """Trainer.evaluate over the whole (x, y), each process evaluating its slice of
        every batch, the sums reduced across processes: every process gets the metrics
        of the whole data."""
        return self._need_trainer("evaluate").evaluate(x, y, batch_size)

    def _need_trainer(self, method: str) -> TrainerParallel:
        if self._trainer is None:
            raise TypeError(f"DataParallel.{method}: only for a DataParallel of a Trainer; "
                            "with a step builder, loop over gc.data.Batches(..., rank=, "
                            "world_size=) and call step()")
        return self._trainer

    # ----- checkpoints ------------------------------------------------------------------
    def save(self, path) -> Path:
        """Rank 0 writes the training state to `path` (atomically); every process returns
        once it is written. The format is the Trainer's: model/..., optimizer/...,
        trainer/epoch and trainer/step."""
        path = Path(path)
        if self.world.is_main:
            if self._trainer is not None:
                self._trainer.trainer.save(path)
            else:
                checkpoint.save(path, self.state_arrays())
        self.world.barrier(f"the writing of checkpoint {path} by rank 0")
        return path

    def load(self, path) -> None:
        """Rank 0 reads and checks the checkpoint at `path`; every process then takes its
        state from rank 0 (so only rank 0 needs the file). If rank 0 refuses it, every
        process raises the same error and nothing changes."""
        path = Path(path)
        error = None
        if self.world.is_main:
            try:
                self._load_here(path)
            except tuple(_SHARED_ERRORS.values()) as exc:
                error = exc
        outcome = self.world.broadcast_object(
            None if error is None else (type(error).__name__, str(error)),
            what=f"rank 0's reading of checkpoint {path}")
        if error is not None:
            raise error
        if outcome is not None:
            name, message = outcome
            raise _SHARED_ERRORS.get(name, DistributedError)(message)
        self._share_state(path)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The training state by checkpoint name (what `save` writes)."""
        if self._trainer is not None:
            return self._trainer.trainer.state_arrays()
        arrays = {name: node.value.copy() for name, node in self._targets().items()}
        arrays["trainer/epoch"] = np.array(self.epoch, np.int64)
        arrays["trainer/step"] = np.array(self.split.steps, np.int64)
        return arrays

    def _targets(self) -> dict[str, Node]:
        """Checkpoint name -> param, for a step builder's step."""
        spec = self.split.spec
        if spec.model is not None:
            model = spec.model.named_params()
        else:
            model = {}
            for p in spec.optimizer.params:
                if p.name in model:
                    raise ValueError(f"DataParallel: two params are named {p.name!r}; give "
                                     "the TrainingStep a model (a Module) to name them")
                model[p.name] = p
        targets = {f"model/{k}": v for k, v in model.items()}
        targets.update({f"optimizer/{k}": v
                        for k, v in spec.optimizer.named_state().items()})
        return targets

    def _load_here(self, path: Path) -> None:
        """Load on this process (rank 0): all checks before any change."""
        if self._trainer is not None:
            self._trainer.trainer.load(path)
            return
        targets = self._targets()
        arrays = checkpoint.load(path, names=COUNTERS, max_bytes=COUNTER_BYTES,
                                 like={name: node.value for name, node in targets.items()})
        checkpoint.check(arrays, targets, path)
        epoch, step = (_counter(arrays[key], key, path) for key in COUNTERS)
        checkpoint.restore(arrays, targets, path)
        self.epoch, self.split.steps = epoch, step

    def _share_state(self, path: Path) -> None:
        """Give every process rank 0's state, just loaded."""
        if self._trainer is None:
            self.split.broadcast_state()
            self.epoch = int(self.world.broadcast_object(self.epoch, what="the epoch"))
            return
        arrays = self.world.broadcast_object(
            self._trainer.trainer.state_arrays() if self.world.is_main else None,
            what=f"the state of checkpoint {path} from rank 0")
        if not self.world.is_main:
            # The Trainer restores only from a file: a private copy of rank 0's state.
            with tempfile.TemporaryDirectory(prefix="graphc-ddp-") as directory:
                copy = checkpoint.save(os.path.join(directory, "state.npz"), arrays)
                self._trainer.trainer.load(copy)


def _counter(value: np.ndarray, key: str, path) -> int:
    if value.shape != () or value.dtype.kind not in "iu" or not 0 <= int(value) < 2 ** 63:
        raise checkpoint.CheckpointError(f"checkpoint {path}: {key} must be an integer "
                                         f"scalar >= 0, got {value.dtype}{list(value.shape)}")
    return int(value)


def _describe(value) -> str:
    return f"{type(value).__name__} {value!r}"[:120]
