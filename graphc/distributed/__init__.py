"""Data-parallel training over MPI (`pip install 'graphc[mpi]'`: mpi4py and mpich).

    world = gc.distributed.init()              # rank, size; a world of 1 without mpiexec
    ddp = gc.distributed.DataParallel(build)   # build() -> TrainingStep; or a Trainer
    $ mpiexec -n 2 python train.py

Modules: world (the processes and bounded collectives), failure (one process raising
ends the job), buckets (gradient buffers in backward order), step (the step split where
the gradients are complete), trainer (the Trainer's loop made data-parallel), parallel
(DataParallel and its checkpoints).
"""

from graphc.distributed.buckets import DEFAULT_BUCKET_MB, Bucket, completion_order, plan_buckets
from graphc.distributed.failure import DistributedError
from graphc.distributed.parallel import DataParallel
from graphc.distributed.step import SplitStep, Timings, TrainingStep, default_threads
from graphc.distributed.world import DEFAULT_TIMEOUT, World, init, launched_by_mpi

__all__ = [
    "DEFAULT_BUCKET_MB", "DEFAULT_TIMEOUT", "Bucket", "DataParallel", "DistributedError",
    "SplitStep", "Timings", "TrainingStep", "World", "completion_order", "default_threads",
    "init", "launched_by_mpi", "plan_buckets",
]
