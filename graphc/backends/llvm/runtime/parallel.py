"""Compiling several modules at once. llvmlite serializes its calls behind one lock, so
the extra hands are worker processes: a fresh interpreter each (never a fork: the parent
runs native threads) running objgen.py, which imports llvmlite alone and is handed this
process's target, so its object code is the in-process one. The caller compiles too;
everyone takes the next module left. Modules can be submitted one by one (Compiler), so
workers start on the first while the caller still builds the others. A worker that
fails, times out or answers garbage is killed and reaped, and its module is compiled
in-process: the result is the same, only slower. GRAPHC_PARALLEL_COMPILE=0 compiles
everything in-process.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import llvmlite

from graphc.backends.llvm.runtime import target
from graphc.backends.llvm.runtime.threads import cpu_count

# Seconds of CPU a worker costs: its start (interpreter, llvmlite, target: 0.056 measured)
# and the extra LLVM time of compiling a module as parts (~7% on lenet's, halved).
START = 0.1
TIMEOUT = 120.0  # seconds for one module: LLVM takes ~1 s for the biggest we build
MAX_OBJECT = 1 << 30  # bytes: a longer answer is garbage
_OBJGEN = str(Path(__file__).resolve().with_name("objgen.py"))
_LLVMLITE = str(Path(llvmlite.__file__).resolve().parent.parent)


def enabled() -> bool:
    return os.environ.get("GRAPHC_PARALLEL_COMPILE", "1").strip().lower() not in (
        "0", "false", "no", "off")


def workers_for(whole: list[float], divisible: float) -> int:
    """How many worker processes pay for compiling modules of these estimated costs
    (seconds): `whole` modules stay whole, `divisible` seconds can be split finely. A
    worker must save more wall time than the CPU time its start costs; at most one per
    spare CPU."""
    if not enabled():
        return 0
    alone = sum(whole) + divisible
    best, most = 0, 0.0
    for n in range(1, cpu_count()):
        saved = alone - max([*whole, (alone + n * START) / (n + 1)]) - n * START
        if saved > most:
            best, most = n, saved
    return best


@contextlib.contextmanager
def started(n: int) -> Iterator[list[_Worker]]:
    """Up to `n` workers started now, to load llvmlite while the caller builds the IR and
    then be handed to compile_all; any still running at the end are killed and reaped."""
    workers: list[_Worker] = []
    try:
        for _ in range(min(n, cpu_count() - 1) if enabled() else 0):
            workers.append(_Worker(target.current()))
    except OSError:  # no process: compile_all starts its own or compiles in-process
        pass
    try:
        yield workers
    finally:
        for worker in workers:
            worker.close()


def compile_all(texts: list[str], workers: int, ready: list[_Worker] = ()) -> list[bytes]:
    """The object code of each module, compiled here and by up to `workers` processes,
    which take the modules in the order given (the costliest should come first); `ready`
    are workers already started (see `started`)."""
    if workers < 1 or len(texts) < 2:
        return [target.compile_object(text) for text in texts]
    with Compiler(min(workers, len(texts) - 1), ready) as compiler:
        for text in texts:
            compiler.submit(text)
        return compiler.objects()


class Compiler:
    """Modules compiled as they are submitted: each of `workers` worker processes (those
    `ready` first) takes the next module as soon as there is one, so a worker can compile
    a module while the caller still builds the next; `objects()` compiles here what no
    worker took and waits for the rest. Leaving the with-block stops the workers."""

    def __init__(self, workers: int, ready: list[_Worker] = ()):
        self._jobs = _Jobs()
        ready = list(ready)
        self._threads = [threading.Thread(target=_work, daemon=True,
                                          args=(self._jobs, ready.pop() if ready else None))
                         for _ in range(max(0, workers) if enabled() else 0)]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> Compiler:
        return self

    def __exit__(self, *exc) -> None:
        self._jobs.stop()
        for thread in self._threads:
            thread.join()

    def submit(self, text: str) -> None:
        """Queue a module (taken in the order submitted)."""
        self._jobs.add(text)

    def objects(self) -> list[bytes]:
        """The object code of every module submitted, in order (no more may be)."""
        jobs = self._jobs
        jobs.close()
        while (k := jobs.take()) is not None:
            jobs.finish(k, target.compile_object(jobs.texts[k], jobs.target))
        return list(jobs.results)


class _Jobs:
    """The modules submitted, those left to compile (`left`, in order) and the objects
    built so far."""

    def __init__(self):
        self.target = target.current()  # the caller's: worker threads do not inherit it
        self.texts: list[str] = []
        self.left: collections.deque[int] = collections.deque()
        self.results: list[bytes] = []
        self.busy = 0  # modules workers are compiling
        self.closed = False  # no more modules will be submitted
        self.stopped = False
        self.workers: list[_Worker] = []
        self._changed = threading.Condition()

    def add(self, text: str) -> None:
        with self._changed:
            if self.closed:
                raise RuntimeError("internal error: a module submitted after the objects")
            self.texts.append(text)
            self.results.append(b"")
            self.left.append(len(self.texts) - 1)
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def take(self, worker: bool = False) -> int | None:
        """The next module's index, None when there is none to take: a worker waits for
        submissions until they are closed, the caller for the modules workers compile
        (one may come back)."""
        with self._changed:
            while not self.stopped and not self.left and (
                    not self.closed if worker else self.busy):
                self._changed.wait()
            if self.stopped or not self.left:
                return None
            self.busy += worker
            return self.left.popleft()

    def finish(self, k: int, obj: bytes | None, worker: bool = False) -> None:
        """Record a module's object; None puts the module back, first in line (its worker
        failed)."""
        with self._changed:
            if obj is None:
                self.left.appendleft(k)
            else:
                self.results[k] = obj
            self.busy -= worker
            self._changed.notify_all()

    def stop(self) -> None:
        """No more modules for anyone; workers still compiling are killed."""
        with self._changed:
            self.stopped = True
            workers = list(self.workers)
            self._changed.notify_all()
        for worker in workers:
            worker.kill()


def _work(jobs: _Jobs, worker: _Worker | None) -> None:
    """A worker thread: starts a worker process (unless given one) and feeds it modules
    until none is left or it fails."""
    try:
        if worker is None or worker.target != jobs.target:
            if worker is not None:
                worker.close()
            worker = _Worker(jobs.target)
        with jobs._changed:
            jobs.workers.append(worker)
            if jobs.stopped:
                return
        while (k := jobs.take(worker=True)) is not None:
            obj = None
            try:
                obj = worker.compile(jobs.texts[k])
            finally:  # whatever happened, the module is done or back in the queue
                jobs.finish(k, obj, worker=True)
            if obj is None:
                return
    except OSError:  # the process could not be started
        return
    finally:
        if worker is not None:
            worker.close()


class _Worker:
    """One worker process (objgen.py) and its pipes."""

    def __init__(self, chosen: target.Target | None = None):
        """A worker compiling for `chosen` (default: the current target)."""
        chosen = chosen or target.current()
        self.target = chosen
        if not sys.executable:  # an embedded interpreter: nothing to start
            raise OSError("no Python executable to start a compile worker with")
        import subprocess  # only where workers start (its import: ~5 ms of a cache hit)
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", _OBJGEN, _LLVMLITE, *chosen.llvm()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def compile(self, text: str) -> bytes | None:
        """The object code of one module, None if the worker fails, runs out of time
        or answers something that is not what it sent."""
        from graphc.backends.llvm.runtime import objgen  # LLVM only where code is built
        timer = threading.Timer(TIMEOUT, self.process.kill)
        timer.start()
        try:
            data = text.encode()
            self.process.stdin.write(objgen.LENGTH.pack(len(data)) + data)
            self.process.stdin.flush()
            head = self.process.stdout.read(objgen.REPLY.size)
            if len(head) != objgen.REPLY.size:
                return None
            length, digest = objgen.REPLY.unpack(head)
            if length > MAX_OBJECT:
                return None
            obj = self.process.stdout.read(length)
            if not obj or len(obj) != length or hashlib.sha256(obj).digest() != digest:
                return None
            return obj
        except (OSError, ValueError):  # a closed pipe: the worker is gone
            return None
        finally:
            timer.cancel()

    def kill(self) -> None:
        """End the process (it holds nothing worth a graceful exit); `close` reaps it."""
        if self.process.returncode is None:
            self.process.kill()

    def close(self) -> None:
        """Kill and reap the process and close its pipes."""
        self.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:  # a write the worker never read
                pass
