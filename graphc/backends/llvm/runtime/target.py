"""The host's LLVM target: initialization, the target machine, the O3 pipeline, and
turning optimized modules into object code and loaded native code."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading

import llvmlite
import llvmlite.binding as llvm

from graphc.backends.llvm.runtime import objgen

_lock = threading.Lock()


@functools.cache
def _initialize() -> None:
    objgen.initialize()
    # erf/tanh and friends come from libm; sched_yield from libc (the barrier's back-off).
    for name in ("m", "c"):
        path = ctypes.util.find_library(name)
        if path:
            llvm.load_library_permanently(path)


@functools.cache
def host() -> tuple[str, str, str]:
    """(triple, cpu name, cpu features) of the machine we run on."""
    _initialize()
    return (llvm.get_process_triple(), llvm.get_host_cpu_name(),
            llvm.get_host_cpu_features().flatten())


def target_machine() -> llvm.TargetMachine:
    """A fresh target machine for the host CPU at O3 (MCJIT takes ownership of one)."""
    return objgen.target_machine(*host())


def fingerprint() -> str:
    """What object code depends on besides the IR: llvmlite version and host CPU."""
    triple, cpu, features = host()
    return f"llvmlite={llvmlite.__version__};triple={triple};cpu={cpu};features={features}"


def compile_object(ir_text: str) -> bytes:
    """Parse, verify, optimize (O3, loop and SLP vectorization) and emit object code
    (objgen.emit_object, which compile workers run too)."""
    _initialize()
    with _lock:
        return objgen.emit_object(ir_text, *host())


def assembly(ir_text: str) -> str:
    """The optimized host assembly of a module (to inspect vectorization)."""
    _initialize()
    with (_lock, llvm.create_context() as context,
          llvm.parse_assembly(ir_text, context) as module, target_machine() as tm,
          llvm.create_pipeline_tuning_options(speed_level=3) as pto):
        module.triple = tm.triple
        module.data_layout = str(tm.target_data)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        objgen.optimize(module, tm, pto)
        return tm.emit_assembly(module)


class Loaded:
    """Object files loaded into one execution engine (they call each other's exported
    functions); keeps the engine alive."""

    def __init__(self, *objects: bytes):
        _initialize()
        with _lock:
            empty = llvm.parse_assembly("")
            empty.triple = host()[0]
            self.engine = llvm.create_mcjit_compiler(empty, target_machine())
            for obj in objects:
                self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self.engine.finalize_object()

    def address(self, name: str) -> int:
        with _lock:
            address = self.engine.get_function_address(name)
        if not address:
            raise RuntimeError(f"internal error: symbol {name} missing from compiled code")
        return address
