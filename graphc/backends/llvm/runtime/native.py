"""The native call: loaded object code and its argument table, run on the worker threads.
Each call fills the table (inputs, params, fresh outputs) and makes one native call per
thread; a kernel's error comes back as a code and a value the caller words."""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable

import numpy as np

from graphc.backends.llvm.runtime import interrupt, target
from graphc.backends.llvm.runtime.layout import (
    CANCELLED,
    CYCLES,
    ENTRY,
    ERROR_VALUE,
    PROFILE_TICKS,
    Layout,
)
from graphc.backends.llvm.runtime.threads import POOL, cpu_count
from graphc.profile import KernelTime, Profile

_ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
_VALUE_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64)
SMALL_WORK = 1 << 15  # elements: below this, threads=None runs on one thread


class Native:
    """Loaded object code and its argument table: runs one variant. `explain(code, value)`
    words the error a kernel reported."""

    def __init__(self, layout: Layout, loaded: target.elf.Image | target.Loaded,
                 explain: Callable[[int, int], str]):
        self.layout = layout
        self.loaded = loaded
        self.explain = explain
        self.entry_address = loaded.address(ENTRY)
        self.entry = _ENTRY_TYPE(self.entry_address)
        self.error_value = _VALUE_TYPE(loaded.address(ERROR_VALUE))
        self.arena = _aligned(layout.arena_bytes)
        self.arena_address = self.arena.ctypes.data
        # The slots, then the address of the cancel cell the barriers read (interrupt.py).
        self.argv = np.zeros(len(layout.slots) + 1, dtype=np.uint64)
        self.argv[len(layout.slots)] = interrupt.CELL_ADDRESS
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
            argv[slot] = _address(array)
        outputs = []
        for slot, shape, dtype in self.layout.outputs:
            array = np.empty(shape, dtype)
            argv[slot] = _address(array)
            outputs.append(array)
        n = threads or (cpu_count() if self.layout.work >= SMALL_WORK else 1)
        while True:
            with interrupt.watching():
                code = POOL.run(self.entry, self.entry_address, self.argv_address,
                                self.arena_address, n, step)
            if code != CANCELLED:
                break
            # Stopped by Ctrl-C before writing any param: the signal's handler raises
            # (KeyboardInterrupt), or, having handled it otherwise, the call runs again.
            interrupt.deliver()
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


def profile_of(native: Native, arguments, step, threads, calls) -> Profile:
    seconds = native.kernel_times(list(arguments), step, threads, calls)
    kernels = tuple(KernelTime(k, op, shape, t)
                    for k, ((op, shape), t) in enumerate(zip(native.layout.steps, seconds)))
    return Profile("llvm", calls, kernels)


def _address(array: np.ndarray) -> int:
    """The address of a C-contiguous array's data. Through ctypes.c_byte.from_buffer
    where the buffer takes it (writable, not empty): 0.7 us against array.ctypes.data's
    2.7, which a call paid for every input and output."""
    try:
        return ctypes.addressof(_BYTE_AT(array))
    except (TypeError, ValueError):  # read-only or empty
        return array.ctypes.data


_BYTE_AT = ctypes.c_byte.from_buffer


def _aligned(nbytes: int, alignment: int = 64) -> np.ndarray:
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    shift = (-raw.ctypes.data) % alignment
    return raw[shift:shift + nbytes] if nbytes else raw[:0]


def _overlaps(array: np.ndarray, params: list) -> bool:
    return any(np.may_share_memory(array, p.value) for p in params)
