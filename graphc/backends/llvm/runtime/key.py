"""Disk-cache keys, computed from the unoptimized program before anything is optimized or
built.

A key hashes a canonical serialization of the program (every node's op, attrs, dtype and
shape, its inputs by position; inputs and params by dtype and shape only; the inputs,
outputs and updates by position), the compile options, the binding, and everything else
the object code depends on: the source of the graphc package (passes and lowerings), the
versions of llvmlite, NumPy and sympy, and the host CPU. graphc's source enters by a hash
of each file's bytes, so equal sources give equal keys whenever and wherever they were
written; the hashes are remembered by stat signature in a table in the cache folder, so a
process reads only the files changed since. A hit then costs a walk over the user's graph
and a few file reads: neither the optimizer nor the lowerings run.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import time
from pathlib import Path

import llvmlite
import numpy as np
import sympy

from graphc.backends.llvm.runtime import cache, target
from graphc.ir.graph import topological_order
from graphc.ir.node import ArrayAttr, Node
from graphc.ir.program import Program

# Ops whose value is an argument: their names and identities do not reach the code.
ARGUMENTS = {"input", "param"}
_PACKAGE = Path(__file__).resolve().parents[3]  # the graphc package directory
# A source file changed this shortly before a scan began is not remembered: a later
# write within the same timestamp tick (2 s on FAT, 1 s on ext3 or HFS+, a clock tick of a
# few ms elsewhere) could leave its stat signature unchanged (git's "racy" files).
RACY_NS = 2_000_000_000
_TABLE_MAGIC = b"GRAPHC-SOURCES-1\n"


def code_fingerprint(chosen: target.Target | None = None) -> bytes:
    """A digest of graphc's source files, the versions of the libraries that shape the
    emitted code and the target being compiled for (`chosen`, default the current one;
    runtime/target.py: CPU, features, llvmlite)."""
    return _fingerprint(chosen.fingerprint() if chosen is not None else target.fingerprint())


@functools.cache
def _fingerprint(target_fingerprint: str) -> bytes:
    h = hashlib.sha256()
    for relative, digest in source_hashes(_PACKAGE):
        h.update(f"{relative}\0{digest}\0".encode(errors="surrogateescape"))
    h.update(f"numpy={np.__version__};sympy={sympy.__version__};"
             f"llvmlite={llvmlite.__version__};{target_fingerprint}".encode())
    return h.digest()


def source_hashes(root: Path) -> list[tuple[str, str]]:
    """The .py files under `root`, relative to it and sorted, each with the SHA-256 of its
    bytes. As git's index does, a file whose stat signature (size, mtime, ctime, inode) is
    the one remembered with its hash in the table of an earlier process is not read (any
    write moves a file's ctime, which no tool sets back); the table remembers only files
    last changed RACY_NS or more before the scan began. Without the cache (off, untrusted,
    read-only, the table missing or damaged) every file is read."""
    use_table = cache.enabled()
    known = _read_table(root) if use_table else {}
    settled = _now_ns() - RACY_NS  # taken before any stat: a write after it is racy
    table: dict[str, tuple[str, str]] = {}
    found = []
    for relative, path, signature, changed in _source_files(root):
        remembered = known.get(relative)
        digest = remembered[1] if remembered and remembered[0] == signature \
            else _hash_file(path)
        if digest is None:  # removed meanwhile: not a source any more
            continue
        if changed < settled:
            table[relative] = (signature, digest)
        found.append((relative, digest))
    if use_table and table != known:
        _write_table(root, table)
    return sorted(found)


def _source_files(root: Path) -> list[tuple[str, str, str, int]]:
    """The regular .py files under root (outside __pycache__): each one's path relative to
    root, its path, its stat signature (size, mtime, ctime, inode) as a text and when it
    last changed (the later of mtime and ctime, in ns)."""
    found = []
    folders = [str(root)]
    start = len(folders[0]) + 1
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    try:  # an editor's lock file (.#x.py) is a symlink to nowhere
                        st = entry.stat()
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        found.append((entry.path[start:], entry.path,
                                      f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:"
                                      f"{st.st_ino}", max(st.st_mtime_ns, st.st_ctime_ns)))
    return found


def _hash_file(path: str) -> str | None:
    try:
        with open(path, "rb") as source:
            return hashlib.sha256(source.read()).hexdigest()
    except OSError:
        return None


def _table_name(root: Path) -> str:
    """The table's file in the cache folder: one per source tree (a checkout, a worktree,
    an install), so that trees of one user do not rewrite each other's."""
    return cache.SOURCE_TABLE_PREFIX + hashlib.sha256(os.fsencode(root)).hexdigest()[:16]


def _read_table(root: Path) -> dict[str, tuple[str, str]]:
    """The table written for `root` (relative path -> stat signature, hash); empty when
    absent, unreadable, of another tree or damaged (its digest does not match)."""
    data = cache.read_file(_table_name(root))
    start = len(_TABLE_MAGIC) + 32
    if data is None or not data.startswith(_TABLE_MAGIC) \
            or hashlib.sha256(data[start:]).digest() != data[len(_TABLE_MAGIC):start]:
        return {}
    fields = os.fsdecode(data[start:]).split("\0")
    if fields[0] != str(root) or len(fields) % 3 != 1:
        return {}
    return dict(zip(fields[1::3], zip(fields[2::3], fields[3::3], strict=True), strict=True))


def _write_table(root: Path, table: dict[str, tuple[str, str]]) -> None:
    """Replace the table of `root` (atomically; skipped where the cache cannot be written):
    its path, then each file's relative path, stat signature and hash, separated by NULs
    (which no path holds)."""
    fields = [str(root)]
    for relative, (signature, digest) in sorted(table.items()):
        fields += [relative, signature, digest]
    body = os.fsencode("\0".join(fields))
    cache.write_file(_table_name(root), _TABLE_MAGIC, hashlib.sha256(body).digest(), body)


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
