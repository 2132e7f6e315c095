"""Tiered execution: while native code for a binding is being compiled, calls run on the
NumPy reference interpreter, and the native code takes over at the first call after it is
ready. A first call, or a new batch size, then costs one interpreted step rather than a
whole compile (seconds), as a tiered JIT's first tier does.

The tiers compute the same values to rounding (the op table checks every lowering against
the reference; random ops draw the same bits from the same call count), not bit for bit:
which calls ran interpreted depends on how long the compile took, so a tiered run is not
bit-reproducible. That is why it is asked for (`gc.compile(..., tiered=True)` or
GRAPHC_TIERED=1), never the default.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np
import sympy

from graphc.backends.base import Runner
from graphc.profile import Profile
from graphc.shapes import binding_key


class NativeRunner(Runner, Protocol):
    """What the fast tier offers beside a Runner: whether a binding's code is ready
    without compiling (in memory or in the disk cache), and compiling it (any thread)."""

    def ready(self, binding: dict[sympy.Symbol, int]) -> bool: ...

    def build(self, binding: dict[sympy.Symbol, int]) -> None: ...


def requested(option: bool | None) -> bool:
    """tiered= as given, else GRAPHC_TIERED (1/true/yes/on)."""
    if option is not None:
        if not isinstance(option, bool):
            raise TypeError(f"tiered: expected True or False, got {option!r}")
        return option
    return os.environ.get("GRAPHC_TIERED", "").strip().lower() in ("1", "true", "yes", "on")


class TieredRunner:
    """Runs `native` for bindings whose code is ready and the interpreter (made by
    `interpreter()` on first need) for the others while a background thread compiles
    them. A compile that failed raises its error at the next call of its binding, as an
    untiered compile would have at its first."""

    def __init__(self, native: NativeRunner, interpreter: Callable[[], Runner],
                 threads: int | None = None):
        self.native = native
        self.threads = threads
        self._blas = None  # a threadpoolctl.ThreadpoolController, made on first need
        self._interpreter_of = interpreter
        self._interpreter: Runner | None = None
        self._builds: dict[tuple, threading.Thread] = {}
        self._failed: dict[tuple, BaseException] = {}
        self._lock = threading.Lock()
        self.interpreted_calls = 0  # calls the interpreter ran (for tests and reports)

    def run(self, arguments: list[np.ndarray], binding: dict[sympy.Symbol, int],
            step: int) -> list[np.ndarray]:
        key = binding_key(binding)
        if key in self._failed:
            raise self._failed[key]
        if self.native.ready(binding):
            return self.native.run(arguments, binding, step)
        if self._interpreter is None:  # first: it optimizes the program the compile needs
            self._interpreter = self._interpreter_of()
        self.interpreted_calls += 1
        try:
            with self._blas_threads():
                return self._interpreter.run(arguments, binding, step)
        finally:
            # Started after the call, not before: on a machine with few cores the
            # compile would slow this call down, which is the one someone waits for.
            self._start(key, binding)

    def _blas_threads(self) -> contextlib.AbstractContextManager:
        """NumPy's BLAS limited to the function's threads, and to the CPUs a running
        compile leaves free: OpenBLAS's threads spin at every barrier, and beside busy
        compile workers a step of the transformer took 2.5 s rather than 0.3 s here."""
        limit = self.threads
        if any(thread.is_alive() for thread in self._builds.values()):
            limit = min(limit or _cpus(), max(1, _cpus() - 1))
        if limit is None:
            return contextlib.nullcontext()
        if self._blas is None:
            import threadpoolctl  # only where an interpreted call has to limit BLAS

            self._blas = threadpoolctl.ThreadpoolController()
        return self._blas.limit(limits=limit, user_api="blas")

    def _start(self, key: tuple, binding: dict) -> None:
        with self._lock:
            if key in self._builds:
                return
            thread = threading.Thread(target=self._build, args=(key, dict(binding)),
                                      name=f"graphc-compile-{key}", daemon=True)
            self._builds[key] = thread
        thread.start()

    def _build(self, key: tuple, binding: dict) -> None:
        try:
            self.native.build(binding)
        except BaseException as exc:  # reported at the binding's next call
            self._failed[key] = exc

    def ready(self, binding: dict[sympy.Symbol, int]) -> bool:
        """Whether the native code of this binding is ready."""
        return self.native.ready(binding)

    def build(self, binding: dict[sympy.Symbol, int]) -> None:
        """Compile the native code of this binding now, on the calling thread."""
        self.native.build(binding)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every compile started so far; True when none is still running."""
        for thread in list(self._builds.values()):
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._builds.values())

    def profile(self, arguments, binding, step, calls: int) -> Profile:
        """The native code's profile (compiled now if it is not yet)."""
        return self.native.profile(arguments, binding, step, calls)

    def memory_report(self) -> dict:
        return self.native.memory_report()

    def compiled(self, binding: dict | None):
        return self.native.compiled(binding)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
