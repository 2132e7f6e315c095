"""Disk-cache keys, computed from the unoptimized program before anything is optimized or
built.

A key hashes a canonical serialization of the program (every node's op, attrs, dtype and
shape, its inputs by position; inputs and params by dtype and shape only; the inputs,
outputs and updates by position), the compile options, the binding, and everything else
the object code depends on: the source of the graphc package (passes and lowerings), the
versions of llvmlite, NumPy and sympy, and the host CPU. A hit then costs a walk over the
user's graph and a file read: neither the optimizer nor the lowerings run.
"""

from __future__ import annotations

import functools
import hashlib
import os
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


def code_fingerprint() -> bytes:
    """A digest of graphc's source files, the versions of the libraries that shape the
    emitted code and the target being compiled for (runtime/target.py: CPU, features,
    llvmlite)."""
    return _fingerprint(target.fingerprint())


@functools.cache
def _fingerprint(target_fingerprint: str) -> bytes:
    h = hashlib.sha256()
    for relative in _source_files(str(_PACKAGE)):
        with open(os.path.join(_PACKAGE, relative), "rb") as source:
            h.update(relative.encode() + b"\0" + source.read() + b"\0")
    h.update(f"numpy={np.__version__};sympy={sympy.__version__};"
             f"llvmlite={llvmlite.__version__};{target_fingerprint}".encode())
    return h.digest()


def _source_files(root: str) -> list[str]:
    """The package's .py files, relative to root, sorted (os.walk: pathlib's rglob took
    most of a cache hit's 25 ms fingerprint)."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        found += [os.path.relpath(os.path.join(folder, f), root) for f in files
                  if f.endswith(".py")]
    return sorted(found)


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
            shape = ",".join(str(d) for d in node.shape)
            lines.append(f"{node.op}({inputs})[{attrs}]{node.dtype.str}({shape})")
        return numbers[node]

    inputs = [number(n) for n in program.inputs]
    for node in topological_order(program.results):
        number(node)
    outputs = [number(n) for n in program.outputs]
    updates = [(number(p), number(v)) for p, v in program.updates]
    lines.append(f"inputs={inputs};outputs={outputs};updates={updates}")
    return "\n".join(lines)


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
