"""The IR of the worker pool's native side (threads.py): the cells the caller and the
workers share, publishing a job and waiting for it, a worker's spin loop, parking and
claiming a thread id. Imported only where the pool's object code is built."""

from __future__ import annotations

from llvmlite import ir

from graphc.backends.llvm.runtime.threads import (
    ARENA,
    ARGS,
    DONE,
    ENTRY,
    JOBS,
    LIVE,
    MAX_THREADS,
    PENDING,
    SPIN_CYCLES,
    SPIN_ROUNDS,
    STEP,
    THREAD_BITS,
    YIELD_AFTER,
)


class PoolModule:
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
