"""A persistent pool of worker threads that run the native entry together with the caller
and meet at its barriers.

Workers live in native code: each spins (GIL released) on a job counter, calls the
published entry with its thread id, counts itself done, and spins again; only after about
a millisecond without a job does it return to Python and park on a queue. A job then costs
no GIL handoff and no OS wake-up, which would take tens of microseconds: as much as a whole
small training step. (Starting a thread per call would cost milliseconds: the first native
call of a new thread is slow.)"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from queue import SimpleQueue

from llvmlite import ir

SPIN_CYCLES = 4_000_000  # cycle-counter ticks an idle worker spins before parking (~1 ms)
SPIN_ROUNDS = 1 << 22  # the same bound in rounds, where the counter does not tick
YIELD_AFTER = 2000  # rounds the caller spins for its workers before yielding the CPU
# Slots of the shared cell array (i64 each): the job counter, the job, and, on a cache
# line of its own, the done counter.
JOBS, ENTRY, ARGS, ARENA, THREADS, STEP, DONE = 0, 1, 2, 3, 4, 5, 8
ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Module:
    """IR of the pool's native side: the cells, `gc_pool_publish(entry, args, arena, n,
    step) -> jobs`, `gc_pool_work(tid, seen) -> seen` (a worker's loop, returning after an
    idle spin) and `gc_pool_wait_done(target)` (the caller waiting for its workers)."""

    def __init__(self, x86: bool):
        self.module = ir.Module("graphc_pool")
        self.i64 = ir.IntType(64)
        typ = ir.ArrayType(self.i64, 16)
        self.cells = ir.GlobalVariable(self.module, typ, "gc_pool_cells")
        self.cells.initializer, self.cells.align = ir.Constant(typ, None), 64
        self.clock = ir.Function(self.module, ir.FunctionType(self.i64, []),
                                 "llvm.readcyclecounter")
        self.pause = ir.Function(self.module, ir.FunctionType(ir.VoidType(), []),
                                 "llvm.x86.sse2.pause") if x86 else None
        self.entry_type = ir.FunctionType(ir.IntType(32), [ir.PointerType()] * 2 +
                                          [self.i64] * 3)
        self._publish()
        self._work()
        self._wait_done()

    def cell(self, b: ir.IRBuilder, slot: int) -> ir.Value:
        return b.gep(self.cells, [ir.Constant(self.i64, 0), ir.Constant(self.i64, slot)],
                     inbounds=True)

    def _publish(self) -> None:
        i64, ptr = self.i64, ir.PointerType()
        fn = ir.Function(self.module, ir.FunctionType(i64, [ptr, ptr, ptr, i64, i64]),
                         "gc_pool_publish")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        for slot, value in zip((ENTRY, ARGS, ARENA), fn.args[:3]):
            b.store(b.ptrtoint(value, i64), self.cell(b, slot))
        for slot, value in zip((THREADS, STEP), fn.args[3:]):
            b.store(value, self.cell(b, slot))
        previous = b.atomic_rmw("add", self.cell(b, JOBS), ir.Constant(i64, 1), "release")
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
        n = b.load(self.cell(b, THREADS), typ=i64)
        b.cbranch(b.icmp_signed("<", tid, n), call, counted)
        b.position_at_end(call)
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

    def _wait_done(self) -> None:
        i64 = self.i64
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [i64]),
                         "gc_pool_wait_done")
        (target,) = fn.args
        entry, loop, idle, finished = (fn.append_basic_block(n)
                                       for n in ("entry", "loop", "idle", "finished"))
        b = ir.IRBuilder(entry)
        b.branch(loop)
        b.position_at_end(loop)
        rounds = b.phi(i64)
        rounds.add_incoming(ir.Constant(i64, 0), entry)
        done = b.load_atomic(self.cell(b, DONE), "acquire", 8, typ=i64)
        b.cbranch(b.icmp_signed(">=", done, target), finished, idle)
        b.position_at_end(idle)
        if self.pause is not None:
            b.call(self.pause, [])
        with b.if_then(b.icmp_signed(">", rounds, ir.Constant(i64, YIELD_AFTER))):
            b.call(ir.Function(self.module, ir.FunctionType(ir.IntType(32), []),
                               "sched_yield"), [])
        rounds.add_incoming(b.add(rounds, ir.Constant(i64, 1)), b.block)
        b.branch(loop)
        b.position_at_end(finished)
        b.ret_void()


class _Native:
    """The compiled pool module (once per process); ctypes releases the GIL in each call."""

    def __init__(self):
        from graphc.backends.llvm import target

        x86 = target.host()[0].startswith(("x86_64", "i686", "i386"))
        self._loaded = target.Loaded(target.compile_object(str(_Module(x86).module)))
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        self.publish = ctypes.CFUNCTYPE(i64, ptr, ptr, ptr, i64, i64)(
            self._loaded.address("gc_pool_publish"))
        self.work = ctypes.CFUNCTYPE(i64, i64, i64)(self._loaded.address("gc_pool_work"))
        self.wait_done = ctypes.CFUNCTYPE(None, i64)(self._loaded.address("gc_pool_wait_done"))


class WorkerPool:
    """Runs a native entry on n threads: thread 0 in the caller, the rest in workers."""

    def __init__(self):
        self._run_lock = threading.Lock()  # one job at a time
        self._park_lock = threading.Lock()  # a parking worker against a publishing caller
        self._wakeups: list[SimpleQueue] = []
        self._parked: set[int] = set()
        self._jobs = 0  # the job counter's value, as the caller last published it
        self._finished = 0  # worker parts the done counter will have counted

    @functools.cached_property
    def _native(self) -> _Native:
        return _Native()

    def _grow(self, workers: int) -> None:
        while len(self._wakeups) < workers:
            tid = len(self._wakeups) + 1
            self._wakeups.append(SimpleQueue())
            threading.Thread(target=self._work, args=(tid, self._jobs), daemon=True,
                             name=f"graphc-worker-{tid}").start()

    def _work(self, tid: int, seen: int) -> None:
        native, wakeup = self._native, self._wakeups[tid - 1]
        while True:
            seen = native.work(tid, seen)  # returns after an idle spin
            with self._park_lock:  # park unless a job came meanwhile
                parking = self._jobs == seen
                if parking:
                    self._parked.add(tid)
            if parking:
                wakeup.get()

    def run(self, entry, address: int, args: int, arena: int, n: int, step: int) -> int:
        """entry(args, arena, tid, n, step) on threads 0..n-1 (`entry` is the ctypes
        function at `address`): its result on thread 0, once every worker is done."""
        if n <= 1:
            return entry(args, arena, 0, 1, step)
        with self._run_lock:
            native = self._native
            self._grow(n - 1)
            with self._park_lock:
                self._jobs = native.publish(address, args, arena, n, step)
                for tid in self._parked:
                    self._wakeups[tid - 1].put(None)
                self._parked.clear()
            self._finished += n - 1
            code = entry(args, arena, 0, n, step)
            native.wait_done(self._finished)
            return code


POOL = WorkerPool()
