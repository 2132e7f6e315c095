"""The machine's float32 FMA peak and memory bandwidth, measured: a native loop of
independent vector FMAs, and a STREAM-style triad, generated with llvmlite for the host CPU
and run by 1..T threads at once.

The loop keeps ACCUMULATORS independent chains `acc = fma(acc, x, y)` of the widest vector
the host has (16 lanes with AVX-512, 8 with AVX, else 4), enough to cover the FMA latency
(4 cycles) times the FMA pipes (2) on current x86 cores. Each iteration is
ACCUMULATORS * lanes * 2 FLOPs. ctypes releases the GIL, so T Python threads run T copies
in parallel; the peak at T threads is their total FLOPs over the wall time.

The triad (a[i] = b[i] + s * c[i], as STREAM's) runs over float32 arrays of TRIAD_BYTES
each, far beyond the caches; its bandwidth counts what STREAM counts, 12 bytes per
element (two reads and a write), split among the threads by contiguous shares.

    python -m benchmarks.peak [--threads 1,2] [--seconds 0.2]
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import threading
import time

import llvmlite.binding as llvm
from llvmlite import ir

ACCUMULATORS = 12


def lanes(features: str) -> int:
    """The float32 lanes of the widest vector the host's features allow."""
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    return 16 if "avx512f" in enabled else 8 if "avx" in enabled else 4


def fma_module(width: int, accumulators: int = ACCUMULATORS) -> ir.Module:
    """`float fma_loop(i64 n)`: n iterations of `accumulators` independent vector FMAs;
    returns one lane of the sum, so nothing can be optimized away."""
    f32 = ir.FloatType()
    vec = ir.VectorType(f32, width)
    i64 = ir.IntType(64)
    module = ir.Module("fma_peak")
    fmuladd = ir.Function(module, ir.FunctionType(vec, [vec, vec, vec]),
                          f"llvm.fmuladd.v{width}f32")
    fn = ir.Function(module, ir.FunctionType(f32, [i64]), "fma_loop")
    entry, loop, done = (fn.append_basic_block(n) for n in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    splat = lambda v: ir.Constant(vec, [v] * width)  # noqa: E731
    x, y = splat(0.999999), splat(1e-7)
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(i64)
    accs = [b.phi(vec) for _ in range(accumulators)]
    new = [b.call(fmuladd, [acc, x, y]) for acc in accs]
    i_next = b.add(i, ir.Constant(i64, 1))
    b.cbranch(b.icmp_signed("<", i_next, fn.args[0]), loop, done)
    i.add_incoming(ir.Constant(i64, 0), entry)
    i.add_incoming(i_next, loop)
    for k, (acc, nxt) in enumerate(zip(accs, new)):
        acc.add_incoming(splat(float(k + 1)), entry)
        acc.add_incoming(nxt, loop)
    b.position_at_end(done)
    total = new[0]
    for v in new[1:]:
        total = b.fadd(total, v)
    b.ret(b.extract_element(total, ir.Constant(ir.IntType(32), 0)))
    return module


class Probe:
    """The compiled loop, callable from any thread: `probe(n)` runs n iterations."""

    def __init__(self):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        features = llvm.get_host_cpu_features().flatten()
        self.width = lanes(features)
        target = llvm.Target.from_triple(llvm.get_process_triple())
        machine = target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                               features=features, opt=3, jit=True)
        module = llvm.parse_assembly(str(fma_module(self.width)))
        module.verify()
        self._engine = llvm.create_mcjit_compiler(module, machine)
        self._engine.finalize_object()
        address = self._engine.get_function_address("fma_loop")
        self._fn = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64)(address)
        self.flops_per_iteration = ACCUMULATORS * self.width * 2

    def __call__(self, iterations: int) -> float:
        return self._fn(iterations)

    def gflops(self, threads: int, seconds: float = 0.2) -> float:
        """GFLOP/s of `threads` threads each running the loop for about `seconds`."""
        n = 1000
        while True:  # calibrate on one thread
            start = time.perf_counter()
            self(n)
            elapsed = time.perf_counter() - start
            if elapsed > 0.02:
                break
            n *= 4
        n = max(1, int(n * seconds / elapsed))
        workers = [threading.Thread(target=self, args=(n,)) for _ in range(threads)]
        start = time.perf_counter()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        elapsed = time.perf_counter() - start
        return threads * n * self.flops_per_iteration / elapsed / 1e9


TRIAD_BYTES = 64 << 20  # per array


def triad_module() -> ir.Module:
    """`void triad(float *a, float *b, float *c, i64 start, i64 stop, float s)`:
    a[i] = b[i] + s * c[i] for i in [start, stop) (the vectorizer widens it)."""
    f32, i64, ptr = ir.FloatType(), ir.IntType(64), ir.PointerType()
    module = ir.Module("triad")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, ptr, i64, i64, f32]),
                     "triad")
    for arg in fn.args[:3]:
        arg.add_attribute("noalias")
    a, b_, c, start, stop, s = fn.args
    entry, loop, done = (fn.append_basic_block(n) for n in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed("<", start, stop), loop, done)
    b.position_at_end(loop)
    i = b.phi(i64)
    i.add_incoming(start, entry)
    x = b.load(b.gep(b_, [i], source_etype=f32), typ=f32)
    y = b.load(b.gep(c, [i], source_etype=f32), typ=f32)
    b.store(b.fadd(x, b.fmul(s, y)), b.gep(a, [i], source_etype=f32))
    i_next = b.add(i, ir.Constant(i64, 1))
    i.add_incoming(i_next, loop)
    b.cbranch(b.icmp_signed("<", i_next, stop), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return module


class Triad:
    """The compiled triad over three arrays of TRIAD_BYTES: `gbs(threads)` its bandwidth."""

    def __init__(self, nbytes: int = TRIAD_BYTES):
        import numpy as np

        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_triple(llvm.get_process_triple())
        machine = target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                               features=llvm.get_host_cpu_features().flatten(),
                                               opt=3, jit=True)
        module = llvm.parse_assembly(str(triad_module()))
        module.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=3)
        tuning.loop_vectorization = True  # off by default in llvmlite's options
        passes = llvm.create_pass_builder(machine, tuning)
        passes.getModulePassManager().run(module, passes)
        self._engine = llvm.create_mcjit_compiler(module, machine)
        self._engine.finalize_object()
        self._fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 3, ctypes.c_int64,
                                    ctypes.c_int64, ctypes.c_float)(
            self._engine.get_function_address("triad"))
        self.n = nbytes // 4
        self.arrays = [np.full(self.n, v, np.float32) for v in (0.0, 1.0, 2.0)]

    def gbs(self, threads: int, repeat: int = 3) -> float:
        """GB/s of `threads` threads sharing one triad, the best of `repeat`."""
        a, b, c = (x.ctypes.data for x in self.arrays)
        shares = [(self.n * k // threads, self.n * (k + 1) // threads) for k in range(threads)]
        best = float("inf")
        for _ in range(repeat):
            workers = [threading.Thread(target=self._fn, args=(a, b, c, lo, hi, 3.0))
                       for lo, hi in shares]
            start = time.perf_counter()
            for t in workers:
                t.start()
            for t in workers:
                t.join()
            best = min(best, time.perf_counter() - start)
        return 12 * self.n / best / 1e9


def bandwidth(threads: list[int]) -> dict[int, float]:
    """STREAM-triad GB/s at each thread count."""
    triad = Triad()
    return {t: triad.gbs(t) for t in threads}


def measure(threads: list[int], seconds: float = 0.2, tries: int = 3) -> dict[int, float]:
    """The peak GFLOP/s at each thread count: the best of `tries` runs (the machine is
    shared; a peak is what the hardware can do, so the best run is the estimate)."""
    probe = Probe()
    return {t: max(probe.gflops(t, seconds) for _ in range(tries)) for t in threads}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.peak", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seconds", type=float, default=0.2)
    args = parser.parse_args(argv)
    counts = [int(t) for t in args.threads.split(",")]
    memory = bandwidth(counts)
    for t, g in measure(counts, args.seconds).items():
        print(f"{t} thread{'s' if t > 1 else ''}: {g:7.1f} GFLOP/s float32 FMA, "
              f"{memory[t]:6.1f} GB/s triad")
    return 0


if __name__ == "__main__":
    sys.exit(main())
