"""Disk-cache keys, computed from the unoptimized program before anything is optimized or
built.

A key hashes a canonical serialization of the program (every node's op, attrs, dtype and
shape, its inputs by position; inputs and params by dtype and shape only; the inputs,
outputs and updates by position), the compile options, the binding, and everything else
the object code depends on: the source of the graphc package (passes and lowerings), the
versions of llvmlite, NumPy and sympy, and the host CPU. graphc's source enters by each
file's stat signature (size, mtime, ctime, inode), not its bytes. A hit then costs a walk
over the user's graph and a file read: neither the optimizer nor the lowerings run.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from pathlib import Path

import llvmlite
import numpy as np
import sympy

from graphc.backends.llvm.runtime import target
from graphc.ir.graph import topological_order
from graphc.ir.node import ArrayAttr, Node
from graphc.ir.program import Program

# Ops whose value is an argument: their names and identities do not reach the code.
ARGUMENTS = {"input", "param"}
_PACKAGE = Path(__file__).resolve().parents[3]  # the graphc package directory
RECENT_NS = 2_000_000_000  # a source file written this recently is read, not trusted by stat


def code_fingerprint(chosen: target.Target | None = None) -> bytes:
    """A digest of graphc's source files, the versions of the libraries that shape the
    emitted code and the target being compiled for (`chosen`, default the current one;
    runtime/target.py: CPU, features, llvmlite)."""
    return _fingerprint(chosen.fingerprint() if chosen is not None else target.fingerprint())


@functools.cache
def _fingerprint(target_fingerprint: str) -> bytes:
    h = hashlib.sha256()
    for relative, signature in _source_files(str(_PACKAGE)):
        h.update(f"{relative}\0{signature}\0".encode())
    h.update(f"numpy={np.__version__};sympy={sympy.__version__};"
             f"llvmlite={llvmlite.__version__};{target_fingerprint}".encode())
    return h.digest()


def _source_files(root: str) -> list[tuple[str, tuple]]:
    """The package's .py files, relative to root and sorted, each with its stat signature
    (size, mtime, ctime, inode), as git's index tells a changed file without reading it
    (reading and hashing every file took 20 of a cache hit's ~50 ms): any write moves a
    file's ctime, which no tool sets back. A file written within RECENT_NS of now could
    still be written again within the same clock tick, so its bytes are hashed too."""
    recent = _now_ns() - RECENT_NS
    found = []
    folders = [root]
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    signature: tuple = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                    if max(st.st_mtime_ns, st.st_ctime_ns) > recent:
                        with open(entry.path, "rb") as source:
                            signature += (hashlib.sha256(source.read()).hexdigest(),)
                    found.append((entry.path[len(root) + 1:], signature))
    return sorted(found)


def _now_ns() -> int:
    return time.time_ns()


def compile_key(program: Program, optimize: bool, options: dict) -> bytes:
    """The key of gc.compile(program, optimize=..., **options) on the LLVM backend: every
    variant of the compiled function is stored under variant_key(this key, ...)."""
    h = hashlib.sha256(code_fingerprint())
    h.update(serialize(program).encode())
    h.update(f"\noptimize={bool(optimize)};options={_canonical(tuple(sorted(options.items())))}"
             .encode())
    return h.digest()


def variant_key(compiled: bytes, binding: dict, profile: bool = False) -> bytes:
    """The key of one variant: a compile key under a binding (symbol -> int)."""
    bound = sorted((str(s), int(v)) for s, v in binding.items())
    return hashlib.sha256(compiled + f"binding={bound};profile={profile}".encode()).digest()


def program_key(program: Program, binding: dict) -> bytes:
    """A digest of the program's code under `binding` (the code fingerprint included)."""
    return variant_key(hashlib.sha256(code_fingerprint() + serialize(program).encode())
                       .digest(), binding)


def serialize(program: Program) -> str:
    """A text that determines the program up to the names and values of its arguments."""
    numbers: dict[Node, int] = {}
    lines: list[str] = []

    def number(node: Node) -> int:
        if node not in numbers:
            numbers[node] = len(numbers)
            inputs = ",".join(str(numbers[i]) for i in node.inputs)
            attrs = "" if node.op in ARGUMENTS else ";".join(
                f"{k}={_canonical(v)}" for k, v in sorted(node.attrs.items()))
            shape = ",".join(map(_dim_text, node.shape))
            lines.append(f"{node.op}({inputs})[{attrs}]{node.dtype.str}({shape})")
        return numbers[node]

    inputs = [number(n) for n in program.inputs]
    for node in topological_order(program.results):
        number(node)
    outputs = [number(n) for n in program.outputs]
    updates = [(number(p), number(v)) for p, v in program.updates]
    lines.append(f"inputs={inputs};outputs={outputs};updates={updates}")
    return "\n".join(lines)


@functools.lru_cache(maxsize=1024)
def _dim_text(dim) -> str:
    """str of a dim, kept: printing a sympy expression takes ~40 us, and a program
    repeats a few dims thousands of times (a third of a Transformer's cache hit)."""
    return str(dim)


def _canonical(value) -> str:
    """A text that determines an attribute value (type included)."""
    if isinstance(value, ArrayAttr):
        return f"array:{value._digest.hex()}"
    if isinstance(value, tuple):
        return "(" + ",".join(_canonical(v) for v in value) + ")"
    if isinstance(value, sympy.Basic):
        return f"sympy:{sympy.srepr(value)}"
    if isinstance(value, float):
        return f"float:{value.hex()}"
    if isinstance(value, np.dtype):
        return f"dtype:{value.str}"
    return f"{type(value).__name__}:{value!r}"
