"""The world of processes one training job runs on: each process's rank, the number of
processes, the rank among those on the same machine, and the collectives that
DataParallel needs, each bounded by a timeout.

Processes are started by an MPI launcher (`mpiexec -n N python train.py`) and talk
through mpi4py. A script started without a launcher, or where mpi4py is not installed,
gets a world of size 1 whose collectives return their input, so the same script runs
alone unchanged. mpi4py is imported only when a launcher is detected: a plain
`import graphc` never starts MPI.

Every wait is bounded: a collective that has not completed after `timeout` seconds
(default 600, `GRAPHC_DIST_TIMEOUT`, or `init(timeout=...)`) means another process died
or hangs, so this process prints what it waited for and aborts the whole job
(`MPI_Abort`), which makes the launcher end every process (see failure.py).
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from collections.abc import Mapping, Sequence

import numpy as np

from graphc.distributed.failure import (
    DistributedError,
    install_abort_on_error,
    say_and_abort,
)

DEFAULT_TIMEOUT = 600.0  # seconds a collective may wait; long enough for a cold compile
TIMEOUT_VARIABLE = "GRAPHC_DIST_TIMEOUT"
# Set by the launchers in each process they start: MPICH's and Intel MPI's hydra (PMI_*),
# Open MPI (OMPI_*), and PMIx-based launchers such as Open MPI 5 and Slurm's srun.
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
# Waits spin this long (an all-reduce of a few MB on one machine takes tens of
# microseconds), then sleep in growing naps up to MAX_NAP, giving the CPU back: a nap
# delays the step by at most MAX_NAP after the last process arrives, and a process that
# waits long (another compiling) wakes 5000 times a second, a few % of a CPU.
SPIN_SECONDS = 1e-3
MAX_NAP = 2e-4
_OPS = ("sum", "max", "min")

_world: World | None = None


class World:
    """The processes of one job. rank: this process's number, 0 to size - 1 (rank 0 is
    the one that prints and writes checkpoints); local_rank / local_size: the same
    among the processes on this machine; timeout: the seconds any collective may wait.

    The collectives take and return numpy arrays; every process must call the same
    collectives in the same order, as MPI requires."""

    def __init__(self, comm=None, timeout: float = DEFAULT_TIMEOUT):
        self.comm = comm
        self.timeout = _checked_timeout(timeout)
        if comm is None:
            self.rank, self.size, self.local_rank, self.local_size = 0, 1, 0, 1
        else:
            from mpi4py import MPI

            self.rank, self.size = comm.Get_rank(), comm.Get_size()
            local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
            self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
            local.Free()
        self.communication_seconds = 0.0  # time spent waiting in collectives, summed

    def __repr__(self) -> str:
        return (f"World(rank={self.rank}, size={self.size}, local_rank={self.local_rank}, "
                f"local_size={self.local_size})")

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that prints and writes checkpoints."""
        return self.rank == 0

    # ----- collectives ----------------------------------------------------------------
    def start_allreduce(self, buffer: np.ndarray, op: str = "sum"):
        """Start reducing `buffer` (a contiguous array) in place across all processes;
        returns a request for `wait`, or None in a world of size 1 (nothing to do)."""
        mpi_op = _mpi_op(op)
        if not buffer.flags.c_contiguous or not buffer.flags.writeable:
            raise ValueError("all-reduce: the buffer must be C-contiguous and writable")
        if self.comm is None:
            return None
        from mpi4py import MPI

        return self.comm.Iallreduce(MPI.IN_PLACE, buffer, op=mpi_op)

    def wait(self, requests: Sequence, what: str) -> None:
        """Wait for requests (None entries are done already). After `timeout` seconds,
        print what was waited for and abort the whole job: a process that never arrives
        at a collective has died or hangs, and waiting longer cannot help."""
        pending = [r for r in requests if r is not None]
        if not pending:
            return
        from mpi4py import MPI

        start = time.perf_counter()
        deadline = start + self.timeout
        nap = 0.0
        while not MPI.Request.Testall(pending):
            now = time.perf_counter()
            if now > deadline:
                self.abort(f"{what} did not complete within {self.timeout:g} s (set by "
                           f"{TIMEOUT_VARIABLE} or init(timeout=...)): another process "
                           "has failed or hangs")
            if now - start > SPIN_SECONDS:
                nap = min(MAX_NAP, max(2 * nap, 20e-6))
                time.sleep(nap)
        self.communication_seconds += time.perf_counter() - start

    def allreduce(self, values, op: str = "sum", what: str = "all-reduce") -> np.ndarray:
        """A new array: `values` combined element by element across all processes by
        op ("sum", "max" or "min")."""
        array = np.array(values, order="C", copy=True)
        if array.dtype.hasobject:
            raise TypeError(f"{what}: expected numbers, got an array of Python objects")
        self.wait([self.start_allreduce(array, op)], what)
        return array

    def sum(self, values: Mapping[str, float], what: str = "metrics") -> dict[str, float]:
        """Named numbers (counts, sums of losses) summed across all processes: how an
        evaluation over sharded data becomes the evaluation of the whole data."""
        names = list(values)
        totals = self.allreduce(np.array([float(values[n]) for n in names], np.float64),
                                what=f"the sum of {what} {names}")
        return {name: float(total) for name, total in zip(names, totals)}

    def broadcast(self, array: np.ndarray, root: int = 0, what: str = "broadcast") -> None:
        """Overwrite `array` (contiguous) on every process with root's."""
        self.broadcast_many([array], root, what)

    def broadcast_many(self, arrays: Sequence[np.ndarray], root: int = 0,
                       what: str = "broadcast") -> None:
        """Overwrite each array (contiguous) on every process with root's, all at once."""
        if self.comm is None:
            return
        for k, array in enumerate(arrays):
            if not array.flags.c_contiguous or not array.flags.writeable:
                raise ValueError(f"{what}: array {k} must be C-contiguous and writable")
        self.wait([self.comm.Ibcast(a, root=root) for a in arrays if a.size], what)

    def broadcast_object(self, value=None, root: int = 0, what: str = "broadcast"):
        """root's `value` (any picklable object) on every process. The bytes travel
        between this job's own processes only, so unpickling them trusts no outsider."""
        if self.comm is None:
            return value
        payload = pickle.dumps(value) if self.rank == root else b""
        length = np.array([len(payload)], np.int64)
        self.wait([self.comm.Ibcast(length, root=root)], f"{what} (its length)")
        data = (np.frombuffer(payload, np.uint8).copy() if self.rank == root
                else np.empty(int(length[0]), np.uint8))
        if data.size:
            self.wait([self.comm.Ibcast(data, root=root)], what)
        return value if self.rank == root else pickle.loads(data.tobytes())

    def barrier(self, what: str = "barrier") -> None:
        """Return once every process has called barrier."""
        if self.comm is not None:
            self.wait([self.comm.Ibarrier()], what)

    def abort(self, message: str, code: int = 1):
        """Print `message` naming this rank, then end every process of the job (MPI
        Abort); in a world of size 1, raise DistributedError instead."""
        if self.comm is None:
            raise DistributedError(message)
        say_and_abort(self.comm, f"graphc.distributed: rank {self.rank} of {self.size}: "
                      f"{message}; aborting the job\n", code)


def init(timeout: float | None = None, abort_on_error: bool = True) -> World:
    """The world this process belongs to: from MPI when started by an MPI launcher
    (`mpiexec -n N python script.py`), else a world of size 1 (also when mpi4py is not
    installed and the launcher started one process).

    timeout: seconds any collective may wait before the job is aborted (default
    GRAPHC_DIST_TIMEOUT, else 600). abort_on_error: an exception that reaches the top of
    any thread of any process prints its traceback, naming the rank, and aborts the whole
    job, so no process is left waiting in a collective for one that died.
    Calling init again returns the same world (with the new timeout, if one is given)."""
    global _world
    if _world is not None:
        if timeout is not None:
            _world.timeout = _checked_timeout(timeout)
        return _world
    if timeout is None:
        timeout = _timeout_from_environment()
    comm = _mpi_world() if launched_by_mpi() else None
    world = World(comm, timeout)
    if comm is not None and abort_on_error:
        install_abort_on_error(world)
    _world = world
    return world


def launched_by_mpi() -> bool:
    """Whether an MPI launcher started this process (its environment variables are set)."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def _launched_size() -> int:
    for name in SIZE_VARIABLES:
        text = os.environ.get(name, "")
        if text.isdigit():
            return int(text)
    return 0


def _mpi_world():
    """MPI's COMM_WORLD, or None if mpi4py is missing and the launcher started only this
    process; refuses to run N copies that would each train alone."""
    try:
        import mpi4py  # noqa: F401 (only whether it is installed)
    except ImportError:
        size = _launched_size()
        if size > 1:
            raise DistributedError(
                f"this process was started by an MPI launcher with {size} processes, but "
                "mpi4py is not installed, so they cannot talk: pip install 'graphc[mpi]' "
                "(mpi4py and mpich)") from None
        return None
    from mpi4py import MPI  # initializes MPI (mpi4py's default)

    return MPI.COMM_WORLD


def _timeout_from_environment() -> float:
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        return _checked_timeout(float(text))
    except ValueError:
        raise DistributedError(f"{TIMEOUT_VARIABLE}={text!r}: expected a number of seconds "
                               "> 0") from None


def _checked_timeout(timeout) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer,
                                                             np.floating)):
        raise TypeError(f"timeout: expected seconds as a number, got {timeout!r}")
    if not timeout > 0:  # also refuses NaN
        raise ValueError(f"timeout: expected seconds > 0, got {timeout!r}")
    return float(timeout)


def _mpi_op(op: str):
    """MPI's reduction for op (None where mpi4py is not imported: a world of size 1)."""
    if op not in _OPS:
        raise ValueError(f"all-reduce: op must be one of {_OPS}, got {op!r}")
    MPI = sys.modules.get("mpi4py.MPI")  # noqa: N806 (the module's own name)
    return None if MPI is None else {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
