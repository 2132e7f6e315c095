"""The LLVM backend: lowers the optimized graph through llvmlite to native code for the
host CPU: one module per program and binding, one exported entry that runs every kernel
(params updated in place), buffers in one planned arena, threads meeting at barriers,
object code cached on disk.

Modules: irtypes (types, casts), kernel (a kernel function and its loops), nest
(broadcasting loop nests), expr (sympy expressions to IR), lower/ (one module per op
family), plan (schedule and memory), module (entry and barriers, split into parts),
target (host target machine, loading objects), elf (loading x86-64 objects without LLVM,
as a cache hit does), objgen (IR to object code, O3; also run as a worker process),
parallel (compiling parts in worker processes), layout (what a cache hit needs to run),
key and cache (disk cache), threads and pool_ir (worker pool), runner (per-binding code).
"""

from __future__ import annotations

from graphc.backends.base import Source
from graphc.backends.llvm.runner import CachedRunner, LLVMRunner
from graphc.backends.llvm.runtime import cache, target
from graphc.backends.llvm.runtime.key import compile_key
from graphc.backends.tiered import TieredRunner, requested


class LLVMBackend:
    name = "llvm"

    def prepare(self, source: Source) -> LLVMRunner | CachedRunner | TieredRunner:
        """Options: threads: None uses every core the process may run on (small graphs run
        on one: results are identical for any thread count); an int sets the count.
        target: the CPU to compile for (runtime/target.py: "host", "x86-64-v2", "-v3",
        "-v4", "aarch64" or an LLVM CPU name, or a runtime.target.Target as `graphc tune`
        passes; default $GRAPHC_TARGET, else "host"); code
        for a CPU this one is not can be inspected but not run. With the disk cache on,
        compiled variants are looked up by the unoptimized program, these options and
        the target first, so a hit neither optimizes nor lowers anything.
        tiered: True (default $GRAPHC_TIERED, else False) runs the calls of a binding whose
        code is not compiled yet on the NumPy interpreter while it compiles in the
        background (backends/tiered.py)."""
        options = dict(source.options)
        threads = options.pop("threads", None)
        tiered = requested(options.pop("tiered", None))
        asked = options.pop("target", None)
        chosen = asked if isinstance(asked, target.Target) else target.resolve(
            asked or target.default_name())
        if options:
            raise TypeError(f"llvm backend: unknown options {sorted(options)}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                    or threads < 1):
            raise ValueError(f"llvm backend: threads must be a positive int or None, got "
                             f"{threads!r}")

        def prepare() -> LLVMRunner:
            from graphc.backends.llvm.lower import table  # a cache hit needs no lowering
            return LLVMRunner(source.optimized(), table(), threads, chosen)

        if not cache.enabled() or chosen.missing_on_host():  # foreign code is never loaded
            native = prepare()
        else:
            with target.using(chosen):
                # The target enters the key through the code fingerprint (CPU, features,
                # tuning); tiered changes when code runs, not the code.
                key = compile_key(source.program, source.optimize,
                                  {k: v for k, v in source.options.items()
                                   if k not in ("target", "tiered")})
            native = CachedRunner(key, source.program, threads, chosen, prepare)
        if not tiered or chosen.missing_on_host():
            return native
        from graphc.backends.numpy import NumpyRunner  # the first tier, only when asked for
        return TieredRunner(native, lambda: NumpyRunner(source.optimized()), threads)
