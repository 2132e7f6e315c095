"""The target code is compiled for (the host by default, or an x86-64 level or a CPU by
name: `gc.compile(target=...)`, $GRAPHC_TARGET), LLVM's initialization, target machines,
and turning optimized modules into object code and loaded native code."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import functools
import hashlib
import json
import os
import platform
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import llvmlite

from graphc.backends.llvm.runtime import cache, elf

if TYPE_CHECKING:
    import llvmlite.binding as llvm

_lock = threading.Lock()

# The x86-64 micro-architecture levels (psABI): what each guarantees, as LLVM CPU names.
LEVELS = {"x86-64-v2": (16, 16, False), "x86-64-v3": (32, 16, True),
          "x86-64-v4": (64, 32, True)}  # name -> (vector bytes, vector registers, FMA)
TARGET_ENV = "GRAPHC_TARGET"


@dataclass(frozen=True)
class Tuning:
    """Blockings measured best on one CPU by `graphc tune` (graphc/tune.py), kept in the
    disk cache per target; None leaves a knob to the analytical default of its module."""

    gemm_rows: int | None = None  # the GEMM register tile's rows (MR)
    gemm_depth: int | None = None  # the GEMM's depth block (KC)
    gemm_block_rows: int | None = None  # the GEMM's row block (MC)

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if v is not None},
                          sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Tuning:
        """The tuning a stored entry holds; ValueError for anything that is not one."""
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) - set(Tuning.__dataclass_fields__):
            raise ValueError(f"not a tuning: {text[:80]!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1 << 16
                   for v in data.values()):
            raise ValueError(f"not a tuning: {text[:80]!r}")
        return Tuning(**data)


DOUBLE_PUMPED = {"znver4"}  # CPUs that run their widest vector ops as two halves


@dataclass(frozen=True)
class Target:
    """The CPU code is compiled for: LLVM's triple, CPU name and features, and what the
    hand-blocked kernels size their register tiles by (vector width and count, FMA) and
    their cache blocks by (cache sizes in bytes)."""

    name: str  # as asked for: "host", "x86-64-v3", an LLVM CPU name
    triple: str
    cpu: str
    features: str  # LLVM feature string; "" takes the CPU's own
    vector_bytes: int
    vector_registers: int
    fma: bool
    caches: tuple[int, int, int] = (32 << 10, 512 << 10, 8 << 20)  # L1d, L2, L3 bytes
    tuning: Tuning = Tuning()

    @property
    def x86(self) -> bool:
        return self.triple.startswith(("x86_64", "i686", "i386"))

    @property
    def avx512(self) -> bool:
        return self.x86 and self.vector_bytes == 64

    @property
    def native_vector_bytes(self) -> int:
        """The vector width the CPU executes in one go: narrower than its registers where
        it splits them (Zen 4 runs a 512-bit op as two 256-bit halves, so a half vector
        costs half as much there; everywhere else it costs as much as a whole one)."""
        return min(self.vector_bytes, 32) if self.cpu in DOUBLE_PUMPED else self.vector_bytes

    def llvm(self) -> tuple[str, str, str]:
        """(triple, cpu, features), what a target machine is made from."""
        return self.triple, self.cpu, self.features

    def fingerprint(self) -> str:
        """What object code depends on besides the IR: llvmlite and the target."""
        return (f"llvmlite={llvmlite.__version__};triple={self.triple};cpu={self.cpu};"
                f"features={self.features};vector={self.vector_bytes}x{self.vector_registers};"
                f"tuning={self.tuning.to_json()}")

    def tuning_key(self) -> bytes:
        """The disk-cache key of this target's tuning (the CPU the code is for, and the
        CPU it was measured on)."""
        return hashlib.sha256(f"tuning\0{self.triple};{self.cpu};{self.features};"
                              f"measured-on={host()[1]}".encode()).digest()

    def describe(self) -> str:
        """One line for humans: name, CPU, vector registers, caches."""
        l1, l2, l3 = (c >> 10 for c in self.caches)
        return (f"{self.name} ({self.triple}, cpu {self.cpu}): {self.vector_registers} "
                f"vector registers of {self.vector_bytes * 8} bits, "
                f"{'FMA' if self.fma else 'no FMA'}; caches L1d {l1} KiB, L2 {l2} KiB, "
                f"L3 {l3} KiB")

    def missing_on_host(self) -> list[str]:
        """The features this target's code uses that the host CPU lacks (empty: its code
        runs here). Asked before every call: worked out once per target."""
        return list(_missing_on_host(self.triple, self.features, self.vector_bytes))


@functools.cache
def _missing_on_host(triple: str, features: str, vector_bytes: int) -> tuple[str, ...]:
    if triple.split("-")[0] != host_target().triple.split("-")[0]:
        return (f"the {triple.split('-')[0]} architecture",)
    have = set(_enabled(host_target().features))
    return tuple(sorted(set(_enabled(features)) - have
                        or ([] if vector_bytes <= host_target().vector_bytes
                            else [f"{vector_bytes * 8}-bit vectors"])))


def _enabled(features: str) -> list[str]:
    return [f[1:] for f in features.split(",") if f.startswith("+")]


def _llvm():
    """llvmlite's binding, imported on first need: a disk-cache hit loads its objects
    without LLVM (elf.py), and importing the binding was half of such a hit's time."""
    import llvmlite.binding
    return llvmlite.binding


def _objgen():
    from graphc.backends.llvm.runtime import objgen
    return objgen


@functools.cache
def _initialize() -> None:
    llvm = _llvm()
    _objgen().initialize()
    # erf/tanh and friends come from libm; sched_yield from libc (the barrier's back-off).
    # glibc's sonames first: find_library runs ldconfig in a subprocess (7 ms of a cache hit).
    for name, soname in (("m", "libm.so.6"), ("c", "libc.so.6")):
        try:
            llvm.load_library_permanently(soname)
        except RuntimeError:
            path = ctypes.util.find_library(name)
            if path:
                llvm.load_library_permanently(path)


@functools.cache
def host() -> tuple[str, str, str]:
    """(triple, cpu name, cpu features) of the machine we run on, as LLVM names them;
    kept in the disk cache under the CPU's own description and llvmlite's version, so
    that a process which only loads cached code never starts LLVM."""
    key = _host_key()
    stored = cache.load(key) if key is not None else None
    if stored:
        try:
            triple, cpu, features = json.loads(stored.decode())
            if all(isinstance(v, str) for v in (triple, cpu, features)) and triple and cpu:
                return triple, cpu, features
        except (ValueError, UnicodeDecodeError, TypeError):
            pass  # damaged: asked again and stored again
    _initialize()
    llvm = _llvm()
    answer = (llvm.get_process_triple(), llvm.get_host_cpu_name(),
              llvm.get_host_cpu_features().flatten())
    if key is not None:
        cache.store(key, json.dumps(answer).encode())
    return answer


def _host_key() -> bytes | None:
    """The disk-cache key of the host's LLVM description: the first processor's entry in
    /proc/cpuinfo (vendor, family, model, stepping, microcode, flags; not its clock) with
    the machine and llvmlite's version; None without a cache or a /proc/cpuinfo."""
    if not cache.enabled():
        return None
    try:
        entry = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return None
    lines = [line for line in entry.splitlines()
             if not line.startswith(("cpu MHz", "bogomips"))]
    if not lines:
        return None
    return hashlib.sha256("\0".join(["host", llvmlite.__version__, platform.machine(),
                                     *lines]).encode()).digest()


@functools.cache
def host_target() -> Target:
    """The machine we run on, with every feature it has."""
    triple, cpu, features = host()
    enabled = set(_enabled(features))
    if triple.startswith(("x86_64", "i686", "i386")):
        width = 64 if "avx512f" in enabled else 32 if "avx" in enabled else 16
        registers, fma = (32 if "avx512f" in enabled else 16), "fma" in enabled
    else:  # aarch64 (NEON: 32 registers of 128 bits, fused multiply-add)
        width, registers, fma = 16, 32, True
    return Target("host", triple, cpu, features, width, registers, fma, _host_caches())


def _host_caches() -> tuple[int, int, int]:
    """L1d, L2 and L3 sizes of cpu0 from sysfs (the defaults where it says nothing)."""
    sizes = dict(zip((1, 2, 3), Target.caches))
    folder = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(folder.glob("index*")) if folder.is_dir() else ():
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and level in sizes and size[:-1].isdigit():
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
            sizes[level] = int(size[:-1]) * scale if size[-1] in "KMG" else int(size)
    return sizes[1], sizes[2], sizes[3]


def resolve(name: str) -> Target:
    """The target a name asks for (see _resolve), with the tuning `graphc tune` stored for
    it on this machine, if any."""
    chosen = _resolve(name)
    tuning = stored_tuning(chosen)
    return chosen if tuning == chosen.tuning else dataclasses.replace(chosen, tuning=tuning)


def stored_tuning(chosen: Target) -> Tuning:
    """The tuning stored in the disk cache for `chosen` (the default when there is none,
    the cache is off, or the entry is damaged); read once per cache folder."""
    if not cache.enabled():
        return Tuning()
    return _stored(chosen.tuning_key(), str(cache.directory()))


@functools.cache
def _stored(key: bytes, folder: str) -> Tuning:
    payload = cache.load(key)
    try:
        return Tuning.from_json(payload.decode()) if payload else Tuning()
    except (ValueError, UnicodeDecodeError):
        return Tuning()


def store_tuning(chosen: Target, tuning: Tuning) -> None:
    """Keep `tuning` for `chosen` in the disk cache (later compiles use it)."""
    cache.store(chosen.tuning_key(), tuning.to_json().encode())
    _stored.cache_clear()


@functools.cache
def _resolve(name: str) -> Target:
    """The target a name asks for: "host"; an x86-64 level ("x86-64-v2", "x86-64-v3",
    "x86-64-v4"); "aarch64" (generic ARMv8 with NEON, for emitting only); or an LLVM CPU
    name of the host's architecture ("znver3", "skylake-avx512", ...), whose vector width
    is read from the code LLVM emits for it."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"target must be a non-empty str such as 'host' or 'x86-64-v3', "
                        f"got {name!r}")
    own = host_target()
    if name == "host":
        return own
    if name in LEVELS:
        width, registers, fma = LEVELS[name]
        triple = own.triple if own.x86 else "x86_64-unknown-linux-gnu"
        return Target(name, triple, name, "", width, registers, fma, own.caches)
    if name == "aarch64":
        return Target(name, "aarch64-unknown-linux-gnu", "generic", "+neon", 16, 32, True,
                      own.caches)
    probe = _probe(own.triple, name)
    if probe is None:
        raise ValueError(f"unknown target {name!r}: not 'host', an x86-64 level "
                         f"({', '.join(LEVELS)}), 'aarch64' or a CPU LLVM knows for "
                         f"{own.triple} (such as 'haswell', 'znver3', 'skylake-avx512')")
    width, fma = probe
    registers = 32 if (width == 64 or not own.x86) else 16
    return Target(name, own.triple, name, "", width, registers, fma, own.caches)


# Emits a 64-byte fused multiply-add for the CPU named argv[2] and prints the width of
# the vector registers used and whether an FMA instruction was; in a process of its own,
# since LLVM warns about an unknown CPU on stderr and may then end the process.
_PROBE = r'''
import sys
import llvmlite.binding as llvm
llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
ir = """
define void @probe(ptr %p) {
  %a = load <16 x float>, ptr %p
  %b = call <16 x float> @llvm.fma.v16f32(<16 x float> %a, <16 x float> %a, <16 x float> %a)
  store <16 x float> %b, ptr %p
  ret void
}
declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)
"""
tm = llvm.Target.from_triple(sys.argv[1]).create_target_machine(cpu=sys.argv[2], opt=0)
asm = tm.emit_assembly(llvm.parse_assembly(ir))
print(64 if "zmm" in asm else 32 if "ymm" in asm else 16, int("vfmadd" in asm or "fmla" in asm))
'''


def _probe(triple: str, cpu: str) -> tuple[int, bool] | None:
    """(vector bytes, FMA) of the code LLVM emits for `cpu`, or None when LLVM does not
    know the CPU."""
    import subprocess  # here only: a cache hit does not import it
    try:
        done = subprocess.run([sys.executable, "-I", "-c", _PROBE, triple, cpu],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or "not a recognized processor" in done.stderr:
        return None
    width, fma = done.stdout.split()
    return int(width), fma == "1"


_current: ContextVar[Target | None] = ContextVar("graphc_target", default=None)


def default_name() -> str:
    """The target compiles use when none is given: $GRAPHC_TARGET, else "host"."""
    return os.environ.get(TARGET_ENV, "").strip() or "host"


def current() -> Target:
    """The target code is being generated for: the one `using` set, else the default."""
    chosen = _current.get()
    return chosen if chosen is not None else resolve(default_name())


@contextlib.contextmanager
def using(target: Target) -> Iterator[Target]:
    """Generate code for `target` within the block (this thread and context only)."""
    token = _current.set(target)
    try:
        yield target
    finally:
        _current.reset(token)


def target_machine(target: Target | None = None) -> llvm.TargetMachine:
    """A fresh target machine for `target` (default: current) at O3 (MCJIT takes
    ownership of one)."""
    return _objgen().target_machine(*(target or current()).llvm())


def fingerprint() -> str:
    """What object code depends on besides the IR: llvmlite version and the current
    target."""
    return current().fingerprint()


def compile_object(ir_text: str, target: Target | None = None,
                   linkable: bool = False) -> bytes:
    """Parse, verify, optimize (O3, loop and SLP vectorization) and emit object code for
    `target` (default: current; objgen.emit_object, which compile workers run too).
    `linkable`: position-independent code for a system linker (graphc.export), not for
    loading here."""
    _initialize()
    with _lock:
        return _objgen().emit_object(ir_text, *(target or current()).llvm(),
                                     linkable=linkable)


def assembly(ir_text: str, target: Target | None = None) -> str:
    """The optimized assembly of a module for `target` (default: current), to inspect
    vectorization and the instructions used."""
    _initialize()
    llvm, objgen = _llvm(), _objgen()
    with (_lock, llvm.create_context() as context,
          llvm.parse_assembly(ir_text, context) as module, target_machine(target) as tm,
          llvm.create_pipeline_tuning_options(speed_level=3) as pto):
        module.triple = tm.triple
        module.data_layout = str(tm.target_data)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        objgen.optimize(module, tm, pto)
        return tm.emit_assembly(module)


def load(*objects: bytes) -> elf.Image | Loaded:
    """Object files loaded into this process, which call each other's exported functions:
    by graphc's own loader where it can (elf.py: no LLVM needed, so a disk-cache hit does
    not import llvmlite's binding), else by LLVM's MCJIT."""
    try:
        return elf.Image(*objects)
    except elf.Unsupported:
        return Loaded(*objects)


class Loaded:
    """Object files loaded into one execution engine (they call each other's exported
    functions); keeps the engine alive."""

    def __init__(self, *objects: bytes):
        _initialize()
        llvm, objgen = _llvm(), _objgen()
        with _lock:
            empty = llvm.parse_assembly("")
            empty.triple = host()[0]  # loaded code runs here, whatever it was built for
            self.engine = llvm.create_mcjit_compiler(empty, objgen.target_machine(*host()))
            for obj in objects:
                self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self.engine.finalize_object()

    def address(self, name: str) -> int:
        with _lock:
            address = self.engine.get_function_address(name)
        if not address:
            raise RuntimeError(f"internal error: symbol {name} missing from compiled code")
        return address
