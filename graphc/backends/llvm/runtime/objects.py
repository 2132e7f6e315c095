"""The object code of a variant's module: its library parts (partition.split_shared) from
the disk cache where a previous compile left them, the rest compiled in parallel parts
(partition.split_kernels, parallel.py) when that saves time."""

from __future__ import annotations

import hashlib

from graphc.backends.llvm.runtime import cache, parallel, partition
from graphc.backends.llvm.runtime.key import code_fingerprint

# What LLVM (O3 and code generation) takes per byte of IR, measured on lenet's step: its
# own module 724 KB in 0.70 s, the GEMM library (hand-blocked vector code) 174 KB in 0.43 s.
OWN_SECONDS_PER_BYTE = 1.0e-6
LIBRARY_SECONDS_PER_BYTE = 2.5e-6
# Parts of the own module per compiling process: fine enough that whoever finishes the GEMM
# library first still finds parts to take, coarse enough that a module's fixed cost stays
# small (lenet cold compile, 2 CPUs: 4 parts 0.90-0.92 s, 5-7 parts 0.81-0.88 s).
PARTS_PER_PROCESS = 3


def early_workers(plan, table: dict) -> int:
    """Workers worth starting before the IR is built (~0.2 s for lenet, time enough for
    one to start) by a guess from the plan: the IR its kernels' lowerings say they emit
    (convolutions, forward and gradients, are by far the biggest; the rest count as
    nothing)."""
    emitted = sum(table[step.node.op].ir_bytes for step in plan.steps if step.node is not None)
    return parallel.workers_for([], emitted * OWN_SECONDS_PER_BYTE)


def objects(own: str, libraries: list[str], ready: list = ()) -> list[bytes]:
    """The object code of the program's own module and of its library modules
    (partition.split_shared). A library is compiled once per machine: stored under the digest
    of its IR (with graphc's code fingerprint, which covers the LLVM version, the CPU and
    the optimization pipeline). What is left to compile is compiled in parallel when it
    is big enough (parallel.py; `ready`: workers already started), the own module split
    into parts for it."""
    names = [hashlib.sha256(code_fingerprint() + b"library\0" + text.encode()).digest()
             if cache.enabled() else None for text in libraries]
    found = [name and cache.load(name) for name in names]
    missing = [k for k, obj in enumerate(found) if not obj]
    workers = parallel.workers_for([len(libraries[k]) * LIBRARY_SECONDS_PER_BYTE
                                    for k in missing], len(own) * OWN_SECONDS_PER_BYTE)
    parts = partition.split_kernels(own, PARTS_PER_PROCESS * (workers + 1)) if workers else [own]
    # The GEMM libraries first: hand-blocked vector code, they cost the most per byte.
    compiled = parallel.compile_all([libraries[k] for k in missing] + parts, workers, ready)
    for k, obj in zip(missing, compiled):
        found[k] = obj
        if names[k] is not None:
            cache.store(names[k], obj)
    return compiled[len(missing):] + found
