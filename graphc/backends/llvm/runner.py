"""The LLVM runners. Per binding of the symbolic dims, LLVMRunner plans the program,
assembles and compiles it, and keeps one native function; CachedRunner puts the disk
cache around it, keyed by the unoptimized program and compile options, so a hit loads
object code and its layout without optimizing, planning or lowering anything. Each call
fills the argument table, allocates the outputs and makes one native call per thread.
(plan.py and module.py, which build the IR, are imported only where a program is
compiled: a hit needs neither.)"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import sympy

from graphc.backends.llvm.runtime import cache, parallel, partition, target
from graphc.backends.llvm.runtime.key import code_fingerprint, variant_key
from graphc.backends.llvm.runtime.layout import (
    CYCLES,
    ENTRY,
    ERROR_VALUE,
    PROFILE_TICKS,
    Layout,
    decode,
    encode,
    layout_of,
    params_of,
)
from graphc.backends.llvm.runtime.threads import POOL, cpu_count
from graphc.ir.graph import Graph
from graphc.ir.program import Program
from graphc.profile import KernelTime, Profile
from graphc.shapes import is_static

if TYPE_CHECKING:
    from graphc.backends.llvm.schedule.plan import Plan
_ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
_VALUE_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64)
SMALL_WORK = 1 << 15  # elements: below this, threads=None runs on one thread
# What LLVM (O3 and code generation) takes per byte of IR, measured on lenet's step: its
# own module 724 KB in 0.70 s, the GEMM library (hand-blocked vector code) 174 KB in 0.43 s.
OWN_SECONDS_PER_BYTE = 1.0e-6
LIBRARY_SECONDS_PER_BYTE = 2.5e-6


class Native:
    """Loaded object code and its argument table: runs one variant. `explain(code, value)`
    words the error a kernel reported."""

    def __init__(self, layout: Layout, loaded: target.Loaded,
                 explain: Callable[[int, int], str]):
        self.layout = layout
        self.loaded = loaded
        self.explain = explain
        self.entry_address = loaded.address(ENTRY)
        self.entry = _ENTRY_TYPE(self.entry_address)
        self.error_value = _VALUE_TYPE(loaded.address(ERROR_VALUE))
        self.arena = _aligned(layout.arena_bytes)
        self.arena_address = self.arena.ctypes.data
        self.argv = np.zeros(max(1, len(layout.slots)), dtype=np.uint64)
        self.argv_address = self.argv.ctypes.data
        self.input_slots: list[tuple[int, int]] = []
        self.param_slots: list[tuple[int, object]] = []
        self._keep = []
        for slot, (kind, key) in enumerate(layout.slots):
            if kind == "input":
                self.input_slots.append((slot, key))
            elif kind == "param":
                self.param_slots.append((slot, key))
            elif kind == "constant":
                self._keep.append(key)
                self.argv[slot] = key.ctypes.data
        self._param_arrays: list = [None] * len(self.param_slots)
        # Written in place natively: an input sharing their memory is copied first.
        self.written = layout.written

    def run(self, arguments: list[np.ndarray], step: int, threads: int | None) -> list:
        """The outputs (fresh arrays); params are updated in place (the caller has checked
        that the params it writes are writable: gc.compile's Executable, on every call)."""
        argv = self.argv
        for k, (slot, node) in enumerate(self.param_slots):
            array = node._value
            if array is not self._param_arrays[k]:
                if not array.flags.c_contiguous or not array.dtype.isnative:
                    raise ValueError(f"param '{node.name}': its value must be a C-contiguous "
                                     "array in native byte order")
                self._param_arrays[k] = array
                argv[slot] = array.ctypes.data
        for slot, k in self.input_slots:
            array = arguments[k]
            if not array.flags.c_contiguous or (self.written and _overlaps(array, self.written)):
                array = np.ascontiguousarray(array).copy()
                arguments[k] = array
            argv[slot] = array.ctypes.data
        outputs = []
        for slot, shape, dtype in self.layout.outputs:
            array = np.empty(shape, dtype)
            argv[slot] = array.ctypes.data
            outputs.append(array)
        n = threads or (cpu_count() if self.layout.work >= SMALL_WORK else 1)
        code = POOL.run(self.entry, self.entry_address, self.argv_address, self.arena_address,
                        n, step)
        if code:
            raise ValueError(self.explain(code, int(self.error_value())))
        return outputs

    def kernel_times(self, arguments: list, step: int, threads: int | None,
                     calls: int) -> list[float]:
        """Each step's mean seconds over `calls` runs (a profiling build only)."""
        steps = len(self.layout.steps)
        address = ctypes.CFUNCTYPE(ctypes.c_void_p)(self.loaded.address(PROFILE_TICKS))()
        ticks = np.ctypeslib.as_array((ctypes.c_int64 * max(1, steps)).from_address(address))
        ticks[:] = 0
        for _ in range(calls):
            self.run(list(arguments), step, threads)
        return list(ticks[:steps] / (calls * self._cycles_per_second()))

    def _cycles_per_second(self, seconds: float = 0.02) -> float:
        cycles = _VALUE_TYPE(self.loaded.address(CYCLES))
        c0, t0 = cycles(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            pass
        return (cycles() - c0) / (time.perf_counter() - t0)


class Variant:
    """The program compiled for one binding: its plan, IR and native code."""

    def __init__(self, program: Program, binding: dict, table: dict, profile: bool = False):
        from graphc.backends.llvm.schedule.plan import make_plan

        started = time.perf_counter()
        self.program = program
        self.plan: Plan = make_plan(program, binding, table)
        self.table = table
        self.profiled = profile
        self.cache_hit = False
        self.layout = layout_of(self.plan, program)
        with parallel.started(_early_workers(self.plan, table)) as ready:
            self.objects = _objects(*partition.split_shared(self.ir), ready)
        self.native = Native(self.layout, target.Loaded(*self.objects), self.error_message)
        self.seconds = time.perf_counter() - started

    @functools.cached_property
    def ir(self) -> str:
        """The module's LLVM IR."""
        from graphc.backends.llvm.codegen.assemble import assemble
        return assemble(self.plan, self.table, self.profiled)

    def error_message(self, code: int, value: int) -> str:
        step = self.plan.steps[code - 1]
        return self.table[step.node.op].error(step.node, value)


class Stored:
    """A variant loaded from the disk cache. Its plan and IR are rebuilt only when asked
    for (`runner` optimizes the program then)."""

    def __init__(self, native_of: Callable[[Stored], Native], runner: Callable[[], LLVMRunner],
                 binding: dict, profile: bool, seconds: float):
        self._runner = runner
        self.binding = binding
        self.profiled = profile
        self.cache_hit = True
        self.native = native_of(self)
        self.layout = self.native.layout
        self.seconds = seconds

    @functools.cached_property
    def plan(self) -> Plan:
        from graphc.backends.llvm.schedule.plan import make_plan
        runner = self._runner()
        return make_plan(runner.program, self.binding, runner.table)

    @functools.cached_property
    def ir(self) -> str:
        from graphc.backends.llvm.codegen.assemble import assemble
        return assemble(self.plan, self._runner().table, self.profiled)

    def error_message(self, code: int, value: int) -> str:
        steps = self.plan.steps
        if [(s.node.op if s.node is not None else "copy") for s in steps] \
                == [op for op, _ in self.layout.steps]:
            return self._runner().table[steps[code - 1].node.op].error(steps[code - 1].node,
                                                                       value)
        op, shape = self.layout.steps[code - 1]  # the program optimizes differently now
        return f"{op} {shape}: the compiled kernel reported an error (value {value})"


def _early_workers(plan: Plan, table: dict) -> int:
    """Workers worth starting before the IR is built (~0.2 s for lenet, time enough for
    one to start) by a guess from the plan: the IR its kernels' lowerings say they emit
    (convolutions, forward and gradients, are by far the biggest; the rest count as
    nothing)."""
    emitted = sum(table[step.node.op].ir_bytes for step in plan.steps if step.node is not None)
    return parallel.workers_for([], emitted * OWN_SECONDS_PER_BYTE)


# Parts of the own module per compiling process: fine enough that whoever finishes the GEMM
# library first still finds parts to take, coarse enough that a module's fixed cost stays
# small (lenet cold compile, 2 CPUs: 4 parts 0.90-0.92 s, 5-7 parts 0.81-0.88 s).
PARTS_PER_PROCESS = 3


def _objects(own: str, libraries: list[str], ready: list = ()) -> list[bytes]:
    """The object code of the program's own module and of its library modules
    (partition.split_shared). A library is compiled once per machine: stored under the digest
    of its IR (with graphc's code fingerprint, which covers the LLVM version, the CPU and
    the optimization pipeline). What is left to compile is compiled in parallel when it
    is big enough (parallel.py; `ready`: workers already started), the own module split
    into parts for it."""
    names = [hashlib.sha256(code_fingerprint() + b"library\0" + text.encode()).digest()
             if cache.enabled() else None for text in libraries]
    found = [name and cache.load(name) for name in names]
    missing = [k for k, obj in enumerate(found) if not obj]
    workers = parallel.workers_for([len(libraries[k]) * LIBRARY_SECONDS_PER_BYTE
                                    for k in missing], len(own) * OWN_SECONDS_PER_BYTE)
    parts = partition.split_kernels(own, PARTS_PER_PROCESS * (workers + 1)) if workers else [own]
    # The GEMM libraries first: hand-blocked vector code, they cost the most per byte.
    compiled = parallel.compile_all([libraries[k] for k in missing] + parts, workers, ready)
    for k, obj in zip(missing, compiled):
        found[k] = obj
        if names[k] is not None:
            cache.store(names[k], obj)
    return compiled[len(missing):] + found


def _aligned(nbytes: int, alignment: int = 64) -> np.ndarray:
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    shift = (-raw.ctypes.data) % alignment
    return raw[shift:shift + nbytes] if nbytes else raw[:0]


def _overlaps(array: np.ndarray, params: list) -> bool:
    return any(np.may_share_memory(array, p.value) for p in params)


def _binding_key(binding: dict) -> tuple:
    return tuple(sorted((str(s), v) for s, v in binding.items()))


class LLVMRunner:
    """A program prepared for the LLVM backend: one compiled Variant per binding."""

    def __init__(self, program: Program, table: dict, threads: int | None):
        self.program = program
        self.table = table
        self.threads = threads
        self.variants: dict[tuple, Variant] = {}
        self.last: Variant | None = None
        self._profiled: dict[tuple, Variant] = {}
        self._lock = threading.Lock()
        missing = sorted({n.op for n in Graph(program.results).nodes} - set(table))
        if missing:
            raise ValueError(f"llvm backend: no lowering for op(s) {missing}; "
                             "compile with backend='numpy'")

    def variant(self, binding: dict[sympy.Symbol, int], profile: bool = False) -> Variant:
        variants = self._profiled if profile else self.variants
        key = _binding_key(binding)
        found = variants.get(key)
        if found is None:
            found = variants[key] = Variant(self.program, binding, self.table, profile)
        return found

    def run(self, arguments, binding, step):
        with self._lock:  # one arena per variant: calls of one function take turns
            variant = self.last = self.variant(binding)
            outputs = variant.native.run(list(arguments), step, self.threads)
        # The params already hold their new values: return them as the update values.
        return outputs + [param.value for param, _ in self.program.updates]

    def profile(self, arguments, binding, step, calls: int) -> Profile:
        """Per-kernel times of `calls` runs of an instrumented build of this binding (params
        are updated in place: the caller restores them)."""
        with self._lock:
            variant = self.variant(binding, profile=True)
            return _profile(variant.native, arguments, step, self.threads, calls)

    def memory_report(self) -> dict:
        """The arena of the most recent binding against the intermediates it holds."""
        return _memory_report(self.last, len(self.variants))

    def compiled(self, binding: dict | None) -> Variant | None:
        """The variant of a binding (compiled now if it was not), or the last one run."""
        if binding is None:
            return self.last
        with self._lock:
            return self.variant(binding)


def _profile(native: Native, arguments, step, threads, calls) -> Profile:
    seconds = native.kernel_times(list(arguments), step, threads, calls)
    kernels = tuple(KernelTime(k, op, shape, t)
                    for k, ((op, shape), t) in enumerate(zip(native.layout.steps, seconds)))
    return Profile("llvm", calls, kernels)


def _memory_report(v, bindings: int) -> dict:
    if v is None:
        return {"compiled": 0}
    layout = v.layout
    return {"arena_bytes": layout.arena_bytes, "intermediate_bytes": layout.intermediate_bytes,
            "kernels": len(layout.steps), "in_place": layout.in_place,
            "bindings_compiled": bindings, "cache_hit": v.cache_hit,
            "compile_seconds": round(v.seconds, 4)}


class CachedRunner:
    """The disk cache around an LLVMRunner. Variants are stored under the key of the
    compile (key.compile_key: the unoptimized program, the options, graphc's source, the
    libraries and the CPU) and the binding; a stored variant runs without the optimized
    program, which `prepare()` (optimizing and preparing an LLVMRunner) builds only on a
    miss, for a profile or error message, or when someone inspects the plan.

    A program without symbolic dims has one binding, so its variant is looked up here, at
    compile time: a hit skips preparing altogether (the entry proves that preparing these
    options succeeded before); otherwise the runner is prepared now, as without a cache.
    """

    def __init__(self, key: bytes, source: Program, threads: int | None,
                 prepare: Callable[[], LLVMRunner]):
        self.key = key
        self.source = source
        self.threads = threads
        self.params = params_of(source)
        self.variants: dict[tuple, Variant | Stored] = {}
        self.last: Variant | Stored | None = None
        self._profiled: dict[tuple, Variant | Stored] = {}
        self._prepare = prepare
        self._prepared: LLVMRunner | None = None
        self._lock = threading.Lock()
        if all(is_static(n.shape) for n in source.inputs):
            self.last = self._load({}, False)
        if self.last is None:
            self._inner()

    def _inner(self) -> LLVMRunner:
        """The runner of the optimized program, prepared on first need."""
        if self._prepared is None:
            self._prepared = self._prepare()
        return self._prepared

    @property
    def program(self) -> Program:
        """The optimized program (optimizing it now if no miss has yet)."""
        return self._inner().program

    def _load(self, binding: dict, profile: bool) -> Stored | None:
        variants = self._profiled if profile else self.variants
        key = _binding_key(binding)
        if key in variants:
            return variants[key]
        if not cache.enabled():  # turned off since gc.compile
            return None
        started = time.perf_counter()
        payload = cache.load(variant_key(self.key, binding, profile))
        found = payload and decode(payload, self.source, self.params)
        if not found:
            return None
        layout, objects = found
        try:
            loaded = target.Loaded(*objects)
            stored = Stored(lambda s: Native(layout, loaded, s.error_message), self._inner,
                            dict(binding), profile, time.perf_counter() - started)
        except Exception:  # an entry that will not load or link is rebuilt
            return None
        variants[key] = stored
        return stored

    def variant(self, binding: dict[sympy.Symbol, int], profile: bool = False):
        found = self._load(binding, profile)
        if found is None:
            found = self._inner().variant(binding, profile)
            payload = encode(found.layout, found.objects, self.params)
            if payload is not None and cache.enabled():
                cache.store(variant_key(self.key, binding, profile), payload)
            (self._profiled if profile else self.variants)[_binding_key(binding)] = found
        return found

    def run(self, arguments, binding, step):
        with self._lock:
            variant = self.last = self.variant(binding)
            outputs = variant.native.run(list(arguments), step, self.threads)
        return outputs + [param.value for param, _ in self.source.updates]

    def profile(self, arguments, binding, step, calls: int) -> Profile:
        with self._lock:
            variant = self.variant(binding, profile=True)
            return _profile(variant.native, arguments, step, self.threads, calls)

    def memory_report(self) -> dict:
        return _memory_report(self.last, len(self.variants))

    def compiled(self, binding: dict | None) -> Variant | Stored | None:
        """The variant of a binding (compiled or loaded now if it was not), or the last one
        run."""
        if binding is None:
            return self.last
        with self._lock:
            return self.variant(binding)
