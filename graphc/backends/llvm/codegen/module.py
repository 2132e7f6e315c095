"""The module under construction: the llvmlite module, the functions it declares (libm,
intrinsics), the error slot kernels report into, and the barrier threads meet at between
kernels (LLVM atomics)."""

from __future__ import annotations

from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I32, I64, PTR, i64
from graphc.backends.llvm.runtime.layout import CANCELLED

SPINS_BEFORE_YIELD = 2000


class ModuleContext:
    """The module under construction and what kernels share: declared functions, the
    barrier, the error slot."""

    def __init__(self):
        self.module = ir.Module("graphc")
        self._count = self._global("gc_barrier_count", I32)
        self._generation = self._global("gc_barrier_generation", I32)
        self.error_code = self._global("gc_error_code", I32)
        self.error_value = self._global("gc_error_value", I64)
        self._status = self._global("gc_barrier_status", I32)
        self.barrier = self._build_barrier()

    def words(self, prefix: str, values: list[int]) -> ir.GlobalVariable:
        """A constant i64 array under a new name starting with `prefix`: a call site's
        descriptor, the run-time parameters of a library function (GEMM, Winograd)."""
        typ = ir.ArrayType(I64, len(values))
        g = ir.GlobalVariable(self.module, typ, self.module.get_unique_name(prefix))
        g.global_constant = True
        g.linkage = "internal"
        g.initializer = ir.Constant(typ, values)
        return g

    def _global(self, name: str, typ: ir.Type) -> ir.GlobalVariable:
        g = ir.GlobalVariable(self.module, typ, name)
        g.linkage = "internal"
        g.initializer = ir.Constant(typ, 0)
        g.align = 64
        return g

    def function(self, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
        """An external (libm, libc) or intrinsic function, declared once."""
        existing = self.module.globals.get(name)
        if existing is not None:
            return existing
        return ir.Function(self.module, ir.FunctionType(ret, args), name=name)

    def intrinsic(self, base: str, typ: ir.Type, arity: int = 1) -> ir.Function:
        suffix = {"float": "f32", "double": "f64"}.get(str(typ), str(typ))
        return self.function(f"llvm.{base}.{suffix}", typ, [typ] * arity)

    def libm(self, name: str, typ: ir.Type, arity: int = 1) -> ir.Function:
        """A C math function (erf, erff, tanh, tanhf, ...) for a float type."""
        return self.function(name + ("f" if str(typ) == "float" else ""), typ, [typ] * arity)

    def record_error(self, b: ir.IRBuilder, code: int, value: ir.Value) -> None:
        pair = b.cmpxchg(self.error_code, ir.Constant(I32, 0), ir.Constant(I32, code), "monotonic",
                         "monotonic")
        with b.if_then(b.extract_value(pair, 1)):
            b.store_atomic(b.sext(value, I64) if value.type != I64 else value,
                           self.error_value, "monotonic", 8)

    def load_error(self, b: ir.IRBuilder) -> ir.Value:
        return b.load_atomic(self.error_code, "monotonic", 4, typ=I32)

    def wait_all(self, b: ir.IRBuilder, n: ir.Value) -> None:
        """A barrier inside a kernel: every thread's share so far is done (never cancels:
        a kernel runs to its end)."""
        b.call(self.barrier, [n, ir.Constant(PTR, None)])

    def _cancel(self, b: ir.IRBuilder, cell: ir.Value) -> None:
        """Where there is a cancel cell (an i32) and it is set, record CANCELLED."""
        with b.if_then(b.icmp_unsigned("!=", cell, ir.Constant(PTR, None))):
            with b.if_then(b.icmp_signed("!=", b.load_atomic(cell, "monotonic", 4, typ=I32),
                                         ir.Constant(I32, 0))):
                b.cmpxchg(self.error_code, ir.Constant(I32, 0), ir.Constant(I32, CANCELLED),
                          "monotonic", "monotonic")

    def _build_barrier(self) -> ir.Function:
        """A reusable barrier returning the error code as it stood when the last thread
        arrived, so every thread takes the same branch after it (a slow thread must not
        see an error raised after the barrier by a fast one). The last arrival resets the
        count and bumps the generation; the others spin on the generation, yielding the
        CPU after a while. Given a cancel cell (an i32, at barriers before any param is
        written; null elsewhere) the last arrival also turns a set cell into the CANCELLED
        error, so an interrupt stops the call there, params untouched."""
        fn = ir.Function(self.module, ir.FunctionType(I32, [I64, PTR]), name="gc_barrier")
        fn.linkage = "internal"
        n, cell = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        alone = fn.append_basic_block("alone")
        sync = fn.append_basic_block("sync")
        b.cbranch(b.icmp_signed("<=", n, i64(1)), alone, sync)
        b.position_at_end(alone)
        self._cancel(b, cell)
        b.ret(self.load_error(b))
        b.position_at_end(sync)
        generation = b.load_atomic(self._generation, "acquire", 4, typ=I32)
        arrived = b.atomic_rmw("add", self._count, ir.Constant(I32, 1), "acq_rel")
        last = b.icmp_signed("==", arrived, b.trunc(b.sub(n, i64(1)), I32))
        release = fn.append_basic_block("release")
        wait = fn.append_basic_block("wait")
        done = fn.append_basic_block("done")
        b.cbranch(last, release, wait)
        b.position_at_end(release)
        self._cancel(b, cell)
        b.store_atomic(self.load_error(b), self._status, "monotonic", 4)
        b.store_atomic(ir.Constant(I32, 0), self._count, "monotonic", 4)
        b.atomic_rmw("add", self._generation, ir.Constant(I32, 1), "release")
        b.branch(done)
        b.position_at_end(wait)
        spins = b.phi(I64)
        spins.add_incoming(i64(0), sync)
        now = b.load_atomic(self._generation, "acquire", 4, typ=I32)
        back_off = fn.append_basic_block("back_off")
        b.cbranch(b.icmp_signed("!=", now, generation), done, back_off)
        b.position_at_end(back_off)
        with b.if_then(b.icmp_signed(">", spins, i64(SPINS_BEFORE_YIELD))):
            b.call(self.function("sched_yield", I32, []), [])
        spins.add_incoming(b.add(spins, i64(1)), b.block)
        b.branch(wait)
        b.position_at_end(done)
        b.ret(b.load_atomic(self._status, "monotonic", 4, typ=I32))
        return fn
