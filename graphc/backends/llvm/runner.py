"""The LLVM runners: compiling and running a program, one variant per binding of its
symbolic dims. LLVMRunner plans the program (schedule/), assembles its module (codegen/),
compiles it (runtime/objects.py) and runs it (runtime/native.py); CachedRunner puts the
disk cache around it, keyed by the unoptimized program and compile options, so a hit
loads object code and its layout without optimizing, planning or lowering anything.
(The plan and the module assembly are imported only where a program is compiled: a hit
needs neither.)"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import sympy

from graphc import collector
from graphc.backends.llvm.runtime import cache, parallel, partition, progress, target
from graphc.backends.llvm.runtime.key import variant_key
from graphc.backends.llvm.runtime.layout import decode, encode, layout_of, params_of
from graphc.backends.llvm.runtime.native import Native, profile_of
from graphc.backends.llvm.runtime.objects import early_workers, objects
from graphc.ir.program import Program
from graphc.profile import Profile
from graphc.shapes import binding_key, is_static

if TYPE_CHECKING:
    from graphc.backends.llvm.schedule.plan import Plan


class Variant:
    """The program compiled for one binding: its plan, IR and native code."""

    def __init__(self, program: Program, binding: dict, table: dict, chosen: target.Target,
                 profile: bool = False):
        from graphc.backends.llvm.schedule.plan import make_plan  # only when compiling

        started = time.perf_counter()
        self.program = program
        self.target = chosen
        self.table = table
        self.profiled = profile
        self.cache_hit = False
        with target.using(chosen):
            with collector.paused():
                self.plan: Plan = make_plan(program, binding, table)
                self.layout = layout_of(self.plan, program)
            with (progress.compiling(_what(self.plan, binding)),
                  parallel.started(early_workers(self.plan, table)) as ready):
                with collector.paused():
                    ir = self.ir
                self.objects = objects(*partition.split_shared(ir), ready)
        # Code for a CPU this one is not (an export, an inspection) is built, never loaded.
        self.native = (None if chosen.missing_on_host() else
                       Native(self.layout, target.load(*self.objects), self.error_message))
        self.seconds = time.perf_counter() - started

    @functools.cached_property
    def ir(self) -> str:
        """The module's LLVM IR."""
        from graphc.backends.llvm.codegen.assemble import assemble  # only when compiling
        with target.using(self.target):
            return assemble(self.plan, self.table, self.profiled)

    def error_message(self, code: int, value: int) -> str:
        step = self.plan.steps[code - 1]
        return self.table[step.node.op].error(step.node, value)


class Stored:
    """A variant loaded from the disk cache. Its plan and IR are rebuilt only when asked
    for (`runner` optimizes the program then)."""

    def __init__(self, native_of: Callable[[Stored], Native], runner: Callable[[], LLVMRunner],
                 binding: dict, profile: bool, seconds: float, chosen: target.Target):
        self._runner = runner
        self.target = chosen
        self.binding = binding
        self.profiled = profile
        self.cache_hit = True
        self.native = native_of(self)
        self.layout = self.native.layout
        self.seconds = seconds

    @functools.cached_property
    def plan(self) -> Plan:
        from graphc.backends.llvm.schedule.plan import make_plan  # only when compiling
        runner = self._runner()
        with target.using(runner.target):
            return make_plan(runner.program, self.binding, runner.table)

    @functools.cached_property
    def ir(self) -> str:
        from graphc.backends.llvm.codegen.assemble import assemble  # only when compiling
        runner = self._runner()
        with target.using(runner.target):
            return assemble(self.plan, runner.table, self.profiled)

    def error_message(self, code: int, value: int) -> str:
        steps = self.plan.steps
        if [(s.node.op if s.node is not None else "copy") for s in steps] \
                == [op for op, _ in self.layout.steps]:
            return self._runner().table[steps[code - 1].node.op].error(steps[code - 1].node,
                                                                       value)
        op, shape = self.layout.steps[code - 1]  # the program optimizes differently now
        return f"{op} {shape}: the compiled kernel reported an error (value {value})"


def _what(plan: Plan, binding: dict) -> str:
    """How a compile is named on the terminal: its kernels and the shapes' binding."""
    kernels = sum(step.node is not None for step in plan.steps)
    dims = ", ".join(f"{s}={v}" for s, v in sorted(binding.items(), key=lambda sv: str(sv[0])))
    return f"{kernels} kernel{'s' if kernels != 1 else ''}" + (f" for {dims}" if dims else "")


def refuse_foreign(chosen: target.Target) -> None:
    """Raise before running code built for a CPU this one is not (it would die of an
    illegal instruction)."""
    missing = chosen.missing_on_host()
    if missing:
        raise RuntimeError(f"llvm backend: this function was compiled for target "
                           f"{chosen.name!r}, whose code uses {', '.join(missing)}, which this "
                           f"CPU ({target.host_target().cpu}) lacks; it can be inspected "
                           f"(compiled()) but not run here")


class _PerBinding:
    """One lock per binding: its code is built by one thread at a time, and a call or a
    build of the same binding meanwhile waits for that one (a build started ahead of
    time: Executable.compile_ahead) instead of compiling it again. Calls of other
    bindings are not held up."""

    def __init__(self):
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: tuple) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


class LLVMRunner:
    """A program prepared for the LLVM backend: one compiled Variant per binding."""

    def __init__(self, program: Program, table: dict, threads: int | None,
                 chosen: target.Target):
        self.program = program
        self.table = table
        self.threads = threads
        self.target = chosen
        self.variants: dict[tuple, Variant] = {}
        self.last: Variant | None = None
        self._profiled: dict[tuple, Variant] = {}
        self._lock = threading.Lock()
        self._building = _PerBinding()
        missing = sorted({n.op for n in program.graph.nodes} - set(table))
        if missing:
            raise ValueError(f"llvm backend: no lowering for op(s) {missing}; "
                             "compile with backend='numpy'")

    def variant(self, binding: dict[sympy.Symbol, int], profile: bool = False) -> Variant:
        variants = self._profiled if profile else self.variants
        key = binding_key(binding)
        found = variants.get(key)
        if found is None:
            with self._building.lock((profile, key)):
                found = variants.get(key)
                if found is None:
                    found = variants[key] = Variant(self.program, binding, self.table,
                                                    self.target, profile)
        return found

    def ready(self, binding: dict[sympy.Symbol, int]) -> bool:
        """Whether this binding's code is compiled (a call would not compile)."""
        return binding_key(binding) in self.variants

    def build(self, binding: dict[sympy.Symbol, int]) -> None:
        """Compile this binding's code now, on the calling thread (a background compile:
        tiered or ahead of time; no progress line)."""
        with progress.silenced():
            self.variant(binding)

    def run(self, arguments, binding, step):
        refuse_foreign(self.target)
        with self._lock:  # one arena per variant: calls of one function take turns
            variant = self.last = self.variant(binding)
            outputs = variant.native.run(list(arguments), step, self.threads)
        # The params already hold their new values: return them as the update values.
        return outputs + [param.value for param, _ in self.program.updates]

    def profile(self, arguments, binding, step, calls: int) -> Profile:
        """Per-kernel times of `calls` runs of an instrumented build of this binding (params
        are updated in place: the caller restores them)."""
        refuse_foreign(self.target)
        with self._lock:
            variant = self.variant(binding, profile=True)
            return profile_of(variant.native, arguments, step, self.threads, calls)

    def memory_report(self) -> dict:
        """The arena of the most recent binding against the intermediates it holds."""
        return _memory_report(self.last, len(self.variants))

    def compiled(self, binding: dict | None) -> Variant | None:
        """The variant of a binding (compiled now if it was not), or the last one run."""
        if binding is None:
            return self.last
        with self._lock:
            return self.variant(binding)


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
    With symbolic dims, the runner is prepared at the first call whose binding is not
    stored: a process that only meets stored batch sizes never optimizes.
    """

    def __init__(self, key: bytes, source: Program, threads: int | None,
                 chosen: target.Target, prepare: Callable[[], LLVMRunner]):
        self.key = key
        self.target = chosen
        self.source = source
        self.threads = threads
        self.params = params_of(source)
        self.variants: dict[tuple, Variant | Stored] = {}
        self.last: Variant | Stored | None = None
        self._profiled: dict[tuple, Variant | Stored] = {}
        self._prepare = prepare
        self._prepared: LLVMRunner | None = None
        self._lock = threading.Lock()
        self._preparing = threading.Lock()
        self._building = _PerBinding()
        if all(is_static(n.shape) for n in source.inputs):
            self.last = self._load({}, False)
            if self.last is None:
                self._inner()

    def _inner(self) -> LLVMRunner:
        """The runner of the optimized program, prepared on first need (once, whichever
        thread needs it first)."""
        with self._preparing:
            if self._prepared is None:
                self._prepared = self._prepare()
        return self._prepared

    @property
    def program(self) -> Program:
        """The optimized program (optimizing it now if no miss has yet)."""
        return self._inner().program

    def _load(self, binding: dict, profile: bool) -> Stored | None:
        variants = self._profiled if profile else self.variants
        key = binding_key(binding)
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
            loaded = target.load(*objects)
            stored = Stored(lambda s: Native(layout, loaded, s.error_message), self._inner,
                            dict(binding), profile, time.perf_counter() - started,
                            self.target)
        except Exception:  # an entry that will not load or link is rebuilt
            return None
        variants[key] = stored
        return stored

    def variant(self, binding: dict[sympy.Symbol, int], profile: bool = False):
        variants = self._profiled if profile else self.variants
        key = binding_key(binding)
        found = variants.get(key)
        if found is not None:
            return found
        with self._building.lock((profile, key)):
            found = self._load(binding, profile)
            if found is None:
                found = self._inner().variant(binding, profile)
                payload = encode(found.layout, found.objects, self.params)
                if payload is not None and cache.enabled():
                    cache.store(variant_key(self.key, binding, profile), payload)
                variants[key] = found
        return found

    def ready(self, binding: dict[sympy.Symbol, int]) -> bool:
        """Whether this binding's code is in memory or in the disk cache (loaded now)."""
        return self._load(binding, False) is not None

    def build(self, binding: dict[sympy.Symbol, int]) -> None:
        """Compile (and store) this binding's code now, on the calling thread, quietly (a
        background compile: tiered or ahead of time)."""
        with progress.silenced():
            self.variant(binding)

    def run(self, arguments, binding, step):
        refuse_foreign(self.target)
        with self._lock:
            variant = self.last = self.variant(binding)
            outputs = variant.native.run(list(arguments), step, self.threads)
        return outputs + [param.value for param, _ in self.source.updates]

    def profile(self, arguments, binding, step, calls: int) -> Profile:
        refuse_foreign(self.target)
        with self._lock:
            variant = self.variant(binding, profile=True)
            return profile_of(variant.native, arguments, step, self.threads, calls)

    def memory_report(self) -> dict:
        return _memory_report(self.last, len(self.variants))

    def compiled(self, binding: dict | None) -> Variant | Stored | None:
        """The variant of a binding (compiled or loaded now if it was not), or the last one
        run."""
        if binding is None:
            return self.last
        with self._lock:
            return self.variant(binding)

