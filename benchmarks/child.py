"""One framework at one thread count, in a process of its own, so thread settings (which
PyTorch, XLA and OpenBLAS read once) cannot leak between measurements.

    python -m benchmarks.child FRAMEWORK THREADS OUT.json --workloads a,b [--repeat R]
        [--budget S] [--quick]

The parent (benchmarks.suite) sets the thread environment (environment()) before the
process starts; the child pins itself to THREADS CPUs first thing. OUT.json receives
{"framework", "threads", "results": {workload: timing or {"error": ...}}} or
{"missing": reason} when the framework cannot be imported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

FRAMEWORKS = ("numpy", "graphc", "torch", "torch.compile", "jax")
MODULES = {"numpy": "graphc", "graphc": "graphc", "torch": "torch", "torch.compile": "torch",
           "jax": "jax"}


def environment(threads: int, base: dict | None = None) -> dict:
    """The environment a child measuring at `threads` threads starts with."""
    env = dict(os.environ if base is None else base)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "multi_thread_eigen" not in f
             and "intra_op_parallelism_threads" not in f]
    if threads == 1:
        flags += ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
    env["XLA_FLAGS"] = " ".join(flags)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def pin(threads: int) -> None:
    """Run on the last `threads` CPUs this process may use (where the OS allows it): CPU 0
    takes more of the interrupts (on this project's 2-core VM a GEMM pinned there ran a
    median 72-74 GFLOP/s against 78-80 on CPU 1, the same best)."""
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cpus[-threads:])


def builder(framework: str):
    """A function (workload, threads) -> runner for `framework` (imports it)."""
    if framework in ("numpy", "graphc"):
        # what building any step imports, so that the memory base of the first workload
        # has it, as torch's has import torch
        import graphc.autodiff  # noqa: F401
        import graphc.backends.llvm.runner  # noqa: F401
        import graphc.compiler  # noqa: F401
        from benchmarks import impl_graphc
        backend = "numpy" if framework == "numpy" else "llvm"
        return lambda w, t: impl_graphc.build(w, t, backend)
    if framework in ("torch", "torch.compile"):
        from benchmarks import impl_torch
        return lambda w, t: impl_torch.build(w, t, compiled=framework == "torch.compile")
    if framework == "jax":
        from benchmarks import impl_jax
        return impl_jax.build
    raise ValueError(f"unknown framework {framework!r}; one of {', '.join(FRAMEWORKS)}")


def run(framework: str, threads: int, names: list[str], repeat: int, budget: float,
        quick: bool) -> dict:
    from benchmarks import memory, timing, workloads

    report: dict = {"framework": framework, "threads": threads}
    try:
        build = builder(framework)
    except ImportError as exc:
        report["missing"] = f"not installed ({exc.name or exc})"
        return report
    known = workloads.by_name(workloads.reference(quick))
    results = report["results"] = {}
    for name in names:
        try:
            def workload(w=known[name]):
                runner = build(w, threads)
                return timing.measure(runner.run, repeat, budget)
            results[name], rss = memory.measured(workload)
            if known[name].kind == "train":  # building and running the step, its data too
                results[name].update(rss)
        except Exception as exc:  # a failure is reported in its cell, the run goes on
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.child")
    parser.add_argument("framework", choices=FRAMEWORKS)
    parser.add_argument("threads", type=int)
    parser.add_argument("out")
    parser.add_argument("--workloads", required=True)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    pin(args.threads)
    report = run(args.framework, args.threads, args.workloads.split(","), args.repeat,
                 args.budget, args.quick)
    Path(args.out).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
