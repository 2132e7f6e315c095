"""The disk-cache key of a program under a binding, computed before any IR is built.

The key hashes a canonical serialization of the program (every node's op, attrs, dtype
and shape, its inputs by position; inputs and params by dtype and shape only; the inputs,
outputs and updates by position), the binding, and everything else the object code
depends on: the source of the graphc package (lowerings read op definitions and
fused-expression helpers), the versions of llvmlite, NumPy and sympy, and the host CPU.
Loading a cached variant then costs a walk over the graph and a file read instead of
building and printing the module.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import llvmlite
import numpy as np
import sympy

from graphc.ir.graph import Graph
from graphc.ir.node import ArrayAttr, Node
from graphc.program import Program

# Ops whose value is an argument: their names and identities do not reach the code.
ARGUMENTS = {"input", "param"}
_PACKAGE = Path(__file__).resolve().parents[2]  # the graphc package directory


@functools.cache
def code_fingerprint() -> bytes:
    """A digest of graphc's source files and the versions of the libraries that shape the
    emitted code; host CPU and llvmlite come from the target module."""
    from graphc.backends.llvm import target

    h = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(_PACKAGE)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    h.update(f"numpy={np.__version__};sympy={sympy.__version__};"
             f"llvmlite={llvmlite.__version__};{target.fingerprint()}".encode())
    return h.digest()


def program_key(program: Program, binding: dict) -> bytes:
    """The cache key of the program's code under `binding` (symbol -> int)."""
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
    for node in Graph(program.results).nodes:
        number(node)
    outputs = [number(n) for n in program.outputs]
    updates = [(number(p), number(v)) for p, v in program.updates]
    bound = sorted((str(s), int(v)) for s, v in binding.items())
    h = hashlib.sha256(code_fingerprint())
    h.update("\n".join(lines).encode())
    h.update(f"\ninputs={inputs};outputs={outputs};updates={updates};binding={bound}".encode())
    return h.digest()


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
