"""The failure policy of a job of several processes: one that raises ends them all.

MPI collectives wait for every process. If one process dies with an exception while the
others wait in an all-reduce, they would wait forever; so, once `init()` finds an MPI
world, an exception that reaches the top of any thread prints its traceback with the
rank's number and calls MPI_Abort, and the launcher (mpiexec) then ends every process of
the job and exits non-zero. A process that hangs without raising is caught by the other
side: every collective wait is bounded by the world's timeout, after which the waiting
process aborts the job the same way (world.py).
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graphc.distributed.world import World


class DistributedError(RuntimeError):
    """The processes of a job cannot work together: MPI is missing where a launcher
    started several processes, they built different steps, or a collective failed."""


def install_abort_on_error(world: World) -> None:
    """Make an uncaught exception in any thread of this process abort the whole job,
    after printing the traceback with this process's rank."""
    previous_hook = sys.excepthook

    def abort_on_exception(exc_type, exc, tb) -> None:
        _report_and_abort(world, exc_type, exc, tb, "")
        previous_hook(exc_type, exc, tb)  # only reached if Abort returned

    def abort_on_thread_exception(args) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        _report_and_abort(world, args.exc_type, args.exc_value, args.exc_traceback,
                          f" in thread {name!r}")

    sys.excepthook = abort_on_exception
    threading.excepthook = abort_on_thread_exception


def _report_and_abort(world: World, exc_type, exc, tb, where: str) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    say_and_abort(world.comm, f"graphc.distributed: rank {world.rank} of {world.size} "
                  f"raised{where}; aborting the job (MPI_Abort) so no process waits for "
                  f"it:\n{text}")


FORWARD_SECONDS = 0.5  # for the launcher to forward a dying process's last words


def say_and_abort(comm, message: str, code: int = 1) -> None:
    """Print `message` and end every process of the job. The launcher forwards output
    through its own processes, which MPI_Abort ends too: a message written just before
    it was sometimes lost on a busy machine (the job ended saying nothing), so the
    output gets a moment to leave first."""
    sys.stderr.write(message)
    sys.stderr.flush()
    time.sleep(FORWARD_SECONDS)
    comm.Abort(code)
