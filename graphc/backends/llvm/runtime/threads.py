"""A persistent pool of worker threads that run the native entry together with the caller
and meet at its barriers.

Workers live in native code: each spins (GIL released) on a job counter, calls the
published entry with its thread id, counts itself done, and spins again; only after about
a millisecond without a job does it return to Python and park on a queue. A job then costs
no GIL handoff and no OS wake-up, which would take tens of microseconds: as much as a whole
small training step. (Starting a thread per call would cost milliseconds: the first native
call of a new thread is slow.)

A job is published, run on thread 0 and waited for in one native call (`gc_pool_run`), so
no Python code, and hence no KeyboardInterrupt, can come between: an interrupt reaches
Python when the call is complete. Workers take their thread ids natively, in order, so a
thread start cut short by an interrupt can leave a spare worker, never two with one id. A
forked child starts with no workers: the pool resets itself there (os.register_at_fork)."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import threading
import time
from queue import SimpleQueue

from graphc.backends.llvm.runtime import cache, target
from graphc.backends.llvm.runtime.key import code_fingerprint

SPIN_CYCLES = 4_000_000  # cycle-counter ticks an idle worker spins before parking (~1 ms)
SPIN_ROUNDS = 1 << 22  # the same bound in rounds, where the counter does not tick
YIELD_AFTER = 2000  # rounds the caller spins for its workers before yielding the CPU
START_SECONDS = 60.0  # a job waits this long for its new workers to start, then fails
# Slots of the shared cell array (i64 each): the job word, the job, a caller about to
# publish (workers must not park), the worker ids taken, and, on a cache line of its own,
# the done counter. The job word is the job counter times 2**THREAD_BITS plus the job's
# thread count, read in one load: a worker the job does not need skips it without reading
# the other cells, which the next job may already be overwriting.
JOBS, ENTRY, ARGS, ARENA, STEP, PENDING, LIVE, DONE = 0, 1, 2, 3, 4, 5, 6, 8
THREAD_BITS = 20
MAX_THREADS = (1 << THREAD_BITS) - 1


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Native:
    """The compiled pool module (once per process); ctypes releases the GIL in each call."""

    def __init__(self):
        here = target.host_target()  # the pool runs here, whatever the programs target
        self._loaded = target.load(_pool_object(here))
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        address = self._loaded.address
        self.run = ctypes.CFUNCTYPE(ctypes.c_int32, ptr, ptr, ptr, i64, i64)(
            address("gc_pool_run"))
        self.work = ctypes.CFUNCTYPE(i64, i64, i64)(address("gc_pool_work"))
        self.idle = ctypes.CFUNCTYPE(i64, i64)(address("gc_pool_idle"))
        self.claim = ctypes.CFUNCTYPE(i64, ctypes.POINTER(i64))(address("gc_pool_claim"))
        cells = ctypes.CFUNCTYPE(ptr)(address("gc_pool_cells"))()
        self.cells = (i64 * 16).from_address(cells)


def _pool_object(here: target.Target) -> bytes:
    """The pool module's object code: from the disk cache (keyed by graphc's code and the
    host) where an earlier process left it, so a process running only cached programs
    never builds IR or starts LLVM; else compiled now (and stored)."""
    name = hashlib.sha256(code_fingerprint(here) + b"worker pool").digest() \
        if cache.enabled() else None
    obj = cache.load(name) if name is not None else None
    if not obj:
        from graphc.backends.llvm.runtime.pool_ir import PoolModule
        obj = target.compile_object(str(PoolModule(here.x86).module), here)
        if name is not None:
            cache.store(name, obj)
    return obj


class WorkerPool:
    """Runs a native entry on n threads: thread 0 in the caller, the rest in workers."""

    def __init__(self):
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _reset(self) -> None:
        self._run_lock = threading.Lock()  # one job at a time
        self._park_lock = threading.Lock()  # a parking worker against a publishing caller
        self._wakeups: dict[int, SimpleQueue] = {}  # by worker id
        self._parked: set[int] = set()
        self._started = 0  # worker threads whose start returned (ids are taken natively)

    def _after_fork(self) -> None:
        """In a forked child: no worker exists, whatever state the parent's were in."""
        self._reset()
        native = self.__dict__.get("_native")
        if native is not None:
            native.cells[LIVE] = native.cells[PENDING] = 0

    @functools.cached_property
    def _native(self) -> _Native:
        return _Native()

    def _grow(self, workers: int) -> None:
        """At least `workers` workers with ids taken. An interrupt here publishes nothing;
        a thread whose start it cut short takes an id later, as a spare."""
        native = self._native
        while self._started < workers:
            threading.Thread(target=self._work, daemon=True,
                             name=f"graphc-worker-{self._started + 1}").start()
            self._started += 1
        deadline = time.monotonic() + START_SECONDS
        while native.cells[LIVE] < workers:
            if time.monotonic() > deadline:  # a thread that died before taking its id
                raise RuntimeError(f"graphc: {workers} worker threads did not start within "
                                   f"{START_SECONDS:.0f} s")
            time.sleep(1e-5)

    def _work(self) -> None:
        native, wakeup, seen = self._native, SimpleQueue(), ctypes.c_int64()
        tid = native.claim(ctypes.byref(seen))
        seen = seen.value
        while True:
            seen = native.work(tid, seen)  # returns after an idle spin
            with self._park_lock:  # park unless a job came or is coming
                parking = bool(native.idle(seen))
                if parking:
                    self._wakeups[tid] = wakeup
                    self._parked.add(tid)
            if parking:
                wakeup.get()

    def run(self, entry, address: int, args: int, arena: int, n: int, step: int) -> int:
        """entry(args, arena, tid, n, step) on threads 0..n-1 (`entry` is the ctypes
        function at `address`): its result on thread 0, once every worker is done."""
        if n <= 1:
            return entry(args, arena, 0, 1, step)
        if n > MAX_THREADS:
            raise ValueError(f"threads: at most {MAX_THREADS}, got {n}")
        with self._run_lock:
            native = self._native
            self._grow(n - 1)
            try:
                with self._park_lock:  # no worker parks from here until the job is out
                    native.cells[PENDING] = 1
                    for tid in self._parked:
                        self._wakeups[tid].put(None)
                    self._parked.clear()
                return native.run(address, args, arena, n, step)
            except BaseException:  # interrupted before publishing: workers may park again
                native.cells[PENDING] = 0
                raise


POOL = WorkerPool()
