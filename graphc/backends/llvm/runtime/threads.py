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
import os
import threading
import time
from queue import SimpleQueue

from llvmlite import ir

from graphc.backends.llvm.runtime import target

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


class _Module:
    """IR of the pool's native side: the cells (`gc_pool_cells() -> ptr`),
    `gc_pool_run(entry, args, arena, n, step) -> code` (publish a job, run thread 0's part,
    wait for the workers), `gc_pool_work(tid, seen) -> seen` (a worker's loop, returning
    after an idle spin), `gc_pool_idle(seen)` (whether a worker may park) and
    `gc_pool_claim(&seen) -> tid` (a new worker's id)."""

    def __init__(self, x86: bool):
        self.module = ir.Module("graphc_pool")
        self.i64 = ir.IntType(64)
        typ = ir.ArrayType(self.i64, 16)
        self.cells = ir.GlobalVariable(self.module, typ, "gc_pool_cells_")
        self.cells.initializer, self.cells.align = ir.Constant(typ, None), 64
        self.clock = ir.Function(self.module, ir.FunctionType(self.i64, []),
                                 "llvm.readcyclecounter")
        self.pause = ir.Function(self.module, ir.FunctionType(ir.VoidType(), []),
                                 "llvm.x86.sse2.pause") if x86 else None
        self.sched_yield = ir.Function(self.module, ir.FunctionType(ir.IntType(32), []),
                                       "sched_yield")
        self.entry_type = ir.FunctionType(ir.IntType(32), [ir.PointerType()] * 2 +
                                          [self.i64] * 3)
        self._cells_address()
        self._run()
        self._work()
        self._idle()
        self._claim()

    def cell(self, b: ir.IRBuilder, slot: int) -> ir.Value:
        return b.gep(self.cells, [ir.Constant(self.i64, 0), ir.Constant(self.i64, slot)],
                     inbounds=True)

    def _cells_address(self) -> None:
        fn = ir.Function(self.module, ir.FunctionType(ir.PointerType(), []), "gc_pool_cells")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.ret(self.cell(b, 0))

    def _run(self) -> None:
        """Publish the job (the done target first: every earlier job is complete, so the
        done counter is still), clear the pending flag, run thread 0's part and wait for
        the n - 1 workers."""
        i64, ptr = self.i64, ir.PointerType()
        fn = ir.Function(self.module, ir.FunctionType(ir.IntType(32), [ptr, ptr, ptr, i64, i64]),
                         "gc_pool_run")
        entry, args, arena, n, step = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        done = b.load_atomic(self.cell(b, DONE), "acquire", 8, typ=i64)
        target = b.add(done, b.sub(n, ir.Constant(i64, 1)))
        for slot, value in zip((ENTRY, ARGS, ARENA), (entry, args, arena)):
            b.store(b.ptrtoint(value, i64), self.cell(b, slot))
        b.store(step, self.cell(b, STEP))
        jobs = b.load_atomic(self.cell(b, JOBS), "monotonic", 8, typ=i64)  # one publisher
        counter = b.add(b.ashr(jobs, ir.Constant(i64, THREAD_BITS)), ir.Constant(i64, 1))
        word = b.or_(b.shl(counter, ir.Constant(i64, THREAD_BITS)), n)
        b.store_atomic(word, self.cell(b, JOBS), "seq_cst", 8)
        b.store_atomic(ir.Constant(i64, 0), self.cell(b, PENDING), "seq_cst", 8)
        callee = b.inttoptr(b.ptrtoint(entry, i64), self.entry_type.as_pointer())
        code = b.call(callee, [args, arena, ir.Constant(i64, 0), n, step])
        self._wait_done(fn, b, target)
        b.ret(code)

    def _wait_done(self, fn: ir.Function, b: ir.IRBuilder, target: ir.Value) -> None:
        """Spin (then yield the CPU between tries) until the done counter reaches target."""
        i64 = self.i64
        before = b.block
        loop, idle, finished = (fn.append_basic_block(n) for n in ("wait", "idle", "finished"))
        b.branch(loop)
        b.position_at_end(loop)
        rounds = b.phi(i64)
        rounds.add_incoming(ir.Constant(i64, 0), before)
        done = b.load_atomic(self.cell(b, DONE), "acquire", 8, typ=i64)
        b.cbranch(b.icmp_signed(">=", done, target), finished, idle)
        b.position_at_end(idle)
        if self.pause is not None:
            b.call(self.pause, [])
        with b.if_then(b.icmp_signed(">", rounds, ir.Constant(i64, YIELD_AFTER))):
            b.call(self.sched_yield, [])
        rounds.add_incoming(b.add(rounds, ir.Constant(i64, 1)), b.block)
        b.branch(loop)
        b.position_at_end(finished)

    def _idle(self) -> None:
        """1 if no caller is about to publish and no job came since `seen` (the flag is
        read first: the caller clears it only after publishing)."""
        i64 = self.i64
        fn = ir.Function(self.module, ir.FunctionType(i64, [i64]), "gc_pool_idle")
        (seen,) = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        pending = b.load_atomic(self.cell(b, PENDING), "seq_cst", 8, typ=i64)
        jobs = b.load_atomic(self.cell(b, JOBS), "seq_cst", 8, typ=i64)
        idle = b.and_(b.icmp_signed("==", pending, ir.Constant(i64, 0)),
                      b.icmp_signed("==", jobs, seen))
        b.ret(b.zext(idle, i64))

    def _claim(self) -> None:
        """A new worker's id (1, 2, ...) and, through the pointer, the job counter as it
        stood before: the worker joins jobs published after it took its id."""
        i64 = self.i64
        fn = ir.Function(self.module, ir.FunctionType(i64, [ir.PointerType()]),
                         "gc_pool_claim")
        (seen,) = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.store(b.load_atomic(self.cell(b, JOBS), "seq_cst", 8, typ=i64), seen)
        previous = b.atomic_rmw("add", self.cell(b, LIVE), ir.Constant(i64, 1), "seq_cst")
        b.ret(b.add(previous, ir.Constant(i64, 1)))

    def _work(self) -> None:
        i64 = self.i64
        fn = ir.Function(self.module, ir.FunctionType(i64, [i64, i64]), "gc_pool_work")
        tid, first_seen = fn.args
        blocks = [fn.append_basic_block(n) for n in ("entry", "start", "spin", "idle", "job",
                                                     "call", "counted", "park")]
        entry, start, spin, idle, job, call, counted, park = blocks
        b = ir.IRBuilder(entry)
        b.branch(start)
        b.position_at_end(start)  # a new spin budget after every job
        seen = b.phi(i64)
        seen.add_incoming(first_seen, entry)
        began = b.call(self.clock, [])
        b.branch(spin)
        b.position_at_end(spin)
        rounds = b.phi(i64)
        rounds.add_incoming(ir.Constant(i64, 0), start)
        now = b.load_atomic(self.cell(b, JOBS), "acquire", 8, typ=i64)
        b.cbranch(b.icmp_signed("!=", now, seen), job, idle)
        b.position_at_end(idle)
        if self.pause is not None:
            b.call(self.pause, [])
        more = b.add(rounds, ir.Constant(i64, 1))
        rounds.add_incoming(more, idle)
        spent = b.or_(b.icmp_signed(">", b.sub(b.call(self.clock, []), began),
                                    ir.Constant(i64, SPIN_CYCLES)),
                      b.icmp_signed(">", more, ir.Constant(i64, SPIN_ROUNDS)))
        b.cbranch(spent, park, spin)
        b.position_at_end(job)
        n = b.and_(now, ir.Constant(i64, MAX_THREADS))
        b.cbranch(b.icmp_signed("<", tid, n), call, counted)
        b.position_at_end(call)
        # The job cannot complete without this worker: its cells stay as published.
        # A pointer typed by the callee (llvmlite takes the call signature from it).
        target = b.inttoptr(b.load(self.cell(b, ENTRY), typ=i64), self.entry_type.as_pointer())
        args = [b.inttoptr(b.load(self.cell(b, slot), typ=i64), ir.PointerType())
                for slot in (ARGS, ARENA)]
        b.call(target, args + [tid, n, b.load(self.cell(b, STEP), typ=i64)])
        b.atomic_rmw("add", self.cell(b, DONE), ir.Constant(i64, 1), "release")
        b.branch(counted)
        b.position_at_end(counted)
        seen.add_incoming(now, counted)
        b.branch(start)
        b.position_at_end(park)
        b.ret(seen)


class _Native:
    """The compiled pool module (once per process); ctypes releases the GIL in each call."""

    def __init__(self):
        here = target.host_target()  # the pool runs here, whatever the programs target
        self._loaded = target.Loaded(target.compile_object(str(_Module(here.x86).module), here))
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        address = self._loaded.address
        self.run = ctypes.CFUNCTYPE(ctypes.c_int32, ptr, ptr, ptr, i64, i64)(
            address("gc_pool_run"))
        self.work = ctypes.CFUNCTYPE(i64, i64, i64)(address("gc_pool_work"))
        self.idle = ctypes.CFUNCTYPE(i64, i64)(address("gc_pool_idle"))
        self.claim = ctypes.CFUNCTYPE(i64, ctypes.POINTER(i64))(address("gc_pool_claim"))
        cells = ctypes.CFUNCTYPE(ptr)(address("gc_pool_cells"))()
        self.cells = (i64 * 16).from_address(cells)


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
