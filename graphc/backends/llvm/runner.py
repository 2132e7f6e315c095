"""The LLVM runner: per binding of the symbolic dims it plans, then loads the object code
from the disk cache (keyed before any IR is built) or assembles and compiles it, and keeps
one native function; each call fills the argument table, allocates the outputs and makes
one native call per thread."""

from __future__ import annotations

import ctypes
import functools
import threading
import time

import numpy as np
import sympy

from graphc.backends.llvm import cache, target
from graphc.backends.llvm.key import program_key
from graphc.backends.llvm.module import CYCLES, ENTRY, PROFILE_TICKS, assemble
from graphc.backends.llvm.plan import Plan, make_plan
from graphc.backends.llvm.threads import POOL, cpu_count
from graphc.ir.graph import Graph
from graphc.profile import KernelTime, Profile
from graphc.program import Program

_ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
_VALUE_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64)
SMALL_WORK = 1 << 15  # elements: below this, threads=None runs on one thread


class Variant:
    """The compiled program for one binding, with its arena and argument table."""

    def __init__(self, program: Program, binding: dict, table: dict, profile: bool = False):
        started = time.perf_counter()
        self.plan: Plan = make_plan(program, binding, table)
        self.table = table
        self.profiled = profile
        self.cache_hit = False
        self.loaded: target.Loaded | None = None
        use_cache = cache.enabled()
        key = program_key(program, binding) + (b"profile" if profile else b"") \
            if use_cache else b""
        obj = cache.load(key) if use_cache else None
        if obj is not None:
            try:
                self.loaded, self.cache_hit = target.Loaded(obj), True
            except Exception:
                self.loaded = None  # an entry that would not load is rebuilt
        if self.loaded is None:
            obj = target.compile_object(self.ir)
            if use_cache:
                cache.store(key, obj)
            self.loaded = target.Loaded(obj)
        self.entry = _ENTRY_TYPE(self.loaded.address(ENTRY))
        self.error_value = _VALUE_TYPE(self.loaded.address("graphc_error_value"))
        self.seconds = time.perf_counter() - started
        self.work = sum(int(np.prod(self.plan.shape(s.node), dtype=np.int64))
                        for s in self.plan.steps if s.node is not None)
        self._setup_arguments(program)

    @functools.cached_property
    def ir(self) -> str:
        """The module's LLVM IR (built only on a cache miss, or when inspected)."""
        return assemble(self.plan, self.table, self.profiled)

    def kernel_times(self, arguments: list, step: int, threads: int | None,
                     calls: int) -> list[float]:
        """Each step's mean seconds over `calls` runs (a profiling variant only)."""
        steps = len(self.plan.steps)
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

    def _setup_arguments(self, program: Program) -> None:
        plan = self.plan
        self.arena = _aligned(plan.arena_bytes)
        self.arena_address = self.arena.ctypes.data
        self.argv = np.zeros(max(1, len(plan.slots)), dtype=np.uint64)
        self.argv_address = self.argv.ctypes.data
        self.input_slots: list[tuple[int, int]] = []
        self.output_slots: list = [None] * len(program.outputs)
        self.param_slots: list[tuple[int, object]] = []
        self._keep = []
        for slot, (kind, key) in enumerate(plan.slots):
            if kind == "input":
                self.input_slots.append((slot, key))
            elif kind == "output":
                node = program.outputs[key]
                self.output_slots[key] = (slot, plan.shape(node), node.dtype)
            elif kind == "param":
                self.param_slots.append((slot, key))
            else:
                array = np.ascontiguousarray(key.value)
                self._keep.append(array)
                self.argv[slot] = array.ctypes.data
        self._param_arrays: list = [None] * len(self.param_slots)
        # Written in place natively: an input sharing their memory is copied first.
        self.written = list(plan.inplace_params)

    def run(self, arguments: list[np.ndarray], step: int, threads: int | None) -> list:
        """The outputs (fresh arrays); params are updated in place."""
        argv = self.argv
        for k, (slot, node) in enumerate(self.param_slots):
            array = node._value
            if array is not self._param_arrays[k]:
                if not array.flags.c_contiguous or not array.flags.writeable:
                    raise ValueError(f"param '{node.name}': its value must be a writable "
                                     "C-contiguous array")
                self._param_arrays[k] = array
                argv[slot] = array.ctypes.data
        for slot, k in self.input_slots:
            array = arguments[k]
            if not array.flags.c_contiguous or (self.written and _overlaps(array, self.written)):
                array = np.ascontiguousarray(array).copy()
                arguments[k] = array
            argv[slot] = array.ctypes.data
        outputs = []
        for slot, shape, dtype in self.output_slots:
            array = np.empty(shape, dtype)
            argv[slot] = array.ctypes.data
            outputs.append(array)
        n = threads or (cpu_count() if self.work >= SMALL_WORK else 1)
        entry, argv_address, arena = self.entry, self.argv_address, self.arena_address
        code = POOL.run(lambda tid: entry(argv_address, arena, tid, n, step), n)
        if code:
            raise ValueError(self.error_message(code))
        return outputs

    def error_message(self, code: int) -> str:
        step = self.plan.steps[code - 1]
        return self.table[step.node.op].error(step.node, int(self.error_value()))


def _aligned(nbytes: int, alignment: int = 64) -> np.ndarray:
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    shift = (-raw.ctypes.data) % alignment
    return raw[shift:shift + nbytes] if nbytes else raw[:0]


def _overlaps(array: np.ndarray, params: list) -> bool:
    return any(np.may_share_memory(array, p.value) for p in params)


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

    def variant(self, binding: dict[sympy.Symbol, int]) -> Variant:
        key = tuple(sorted((str(s), v) for s, v in binding.items()))
        found = self.variants.get(key)
        if found is None:
            found = self.variants[key] = Variant(self.program, binding, self.table)
        return found

    def run(self, arguments, binding, step):
        with self._lock:  # one arena per variant: calls of one function take turns
            variant = self.last = self.variant(binding)
            outputs = variant.run(list(arguments), step, self.threads)
        # The params already hold their new values: return them as the update values.
        return outputs + [param.value for param, _ in self.program.updates]

    def profile(self, arguments, binding, step, calls: int) -> Profile:
        """Per-kernel times of `calls` runs of an instrumented build of this binding (params
        are updated in place: the caller restores them)."""
        with self._lock:
            key = tuple(sorted((str(s), v) for s, v in binding.items()))
            variant = self._profiled.get(key)
            if variant is None:
                variant = self._profiled[key] = Variant(self.program, binding, self.table,
                                                        profile=True)
            seconds = variant.kernel_times(list(arguments), step, self.threads, calls)
        kernels = []
        for s, t in zip(variant.plan.steps, seconds):
            node = s.node if s.node is not None else s.source
            op = node.op if s.node is not None else "copy"
            kernels.append(KernelTime(s.index, op, variant.plan.shape(node), t))
        return Profile("llvm", calls, tuple(kernels))

    def memory_report(self) -> dict:
        """The arena of the most recent binding against the intermediates it holds."""
        v = self.last
        if v is None:
            return {"compiled": 0}
        return {"arena_bytes": v.plan.arena_bytes,
                "intermediate_bytes": v.plan.intermediate_bytes,
                "kernels": len(v.plan.steps), "in_place": v.plan.in_place,
                "bindings_compiled": len(self.variants), "cache_hit": v.cache_hit,
                "compile_seconds": round(v.seconds, 4)}
