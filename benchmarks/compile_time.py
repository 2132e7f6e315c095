"""The compile time of a training step on the LLVM backend, in a fresh process.

    python -m benchmarks.compile_time OUT.json [--tiered]
        [--workload lenet|transformer|transformer-example]

Times gc.compile(...) plus the first call (native code may be built at the first call,
once the shapes are bound), less one steady-state step, so the figure is the compile
alone ("compile_cpu": the CPU time of the process and of the compile workers it started
over the same span, which a busy machine inflates less). Then the first call at a second
batch size (the batch dim is symbolic) less a steady step at that size: what a new batch
size of an already compiled function costs ("rebatch"). The process may use every CPU it
is allowed (LLVM compiles a big module's parts in parallel), the step runs on one thread.
Building the graph (DSL and gc.grad) is timed apart. The parent runs this twice per
workload with the same empty XDG_CACHE_HOME: the first run is cold, the second loads the
disk cache. The workloads are the benchmark's LeNet and Transformer block
(benchmarks/workloads.py) and the training step of examples/transformer_reverse.py (its
model, AdamW and accuracy, as its Trainer builds it). With --tiered the step is compiled
with tiered=True: its first call at each batch size runs on the NumPy interpreter while
the native code compiles in the background; the steady steps are timed once the native
code runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

WORKLOADS = ("lenet", "transformer", "transformer-example")
EXAMPLE_BATCH = 64  # examples/transformer_reverse.py's batch size


def measure(workload: str = "lenet", tiered: bool = False) -> dict:
    import graphc as gc

    start = time.perf_counter()
    if workload == "transformer-example":
        x, y, inputs, outputs, updates = _example()
    else:
        x, y, inputs, outputs, updates = _benchmark_step(workload)
    built, built_cpu = time.perf_counter(), _cpu()
    step = gc.compile(inputs, outputs, updates=updates, backend="llvm", threads=1,
                      tiered=tiered)
    data = {"x": x, "y": y}
    compiled = time.perf_counter()
    step(data["x"], data["y"])
    first, first_cpu = time.perf_counter(), _cpu()
    _native(step)
    steady, steady_cpu = _steady(step, data["x"], data["y"])
    # The CPU time of the same span: on a shared machine wall time also counts the waits
    # for a core.
    cpu = first_cpu - built_cpu - steady_cpu
    half = len(data["y"]) // 2
    before = time.perf_counter()
    step(data["x"][:half], data["y"][:half])
    rebatched = time.perf_counter()
    _native(step)
    steady_half, _ = _steady(step, data["x"][:half], data["y"][:half])
    return {"workload": workload, "build": built - start, "gc_compile": compiled - built,
            "first_call": first - compiled,
            "compile": max(0.0, first - built - steady), "compile_cpu": max(0.0, cpu),
            "step": steady, "rebatch": max(0.0, rebatched - before - steady_half),
            "batches": [len(data["y"]), half], "tiered": tiered,
            "interpreted_calls": getattr(step._runner, "interpreted_calls", 0)}


def _benchmark_step(workload: str) -> tuple:
    """The benchmark's training step of `workload` (benchmarks/workloads.py), plain SGD:
    its data, inputs, outputs and updates."""
    import graphc as gc
    from benchmarks import impl_graphc, workloads

    w = getattr(workloads, workload)()
    data = w.arrays()
    x = gc.input("x", ("N", *data["x"].shape[1:]))
    y = gc.input("y", ("N",), "int32")
    params = [gc.param(f"p{i}", v) for i, v in enumerate(w.params())]
    loss = gc.softmax_cross_entropy(impl_graphc.forward(w, params, x), y)
    grads = gc.grad(loss, params)
    updates = {p: p - workloads.LEARNING_RATE * g for p, g in zip(params, grads)}
    return data["x"], data["y"], [x, y], [loss], updates


def _example() -> tuple:
    """examples/transformer_reverse.py's training step as its Trainer builds it (two
    pre-norm encoder layers, AdamW only when the loss is finite, accuracy counted), at
    the example's batch size."""
    import importlib.util

    from graphc import nn, optim
    from graphc.train import Trainer

    path = Path(__file__).resolve().parent.parent / "examples" / "transformer_reverse.py"
    spec = importlib.util.spec_from_file_location("transformer_reverse", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    x, y = example.make_data(EXAMPLE_BATCH, seed=0)
    nn.manual_seed(0)
    model = example.Reverser()
    trainer = Trainer(model, optim.AdamW(model.params(), lr=3e-3, weight_decay=0.01))
    trainer.compile(x, y)
    step = trainer.step_fn
    return x, y, list(step.source.inputs), list(step.source.outputs), dict(step.source.updates)


def _native(step) -> None:
    """Wait for a tiered step's background compiles (nothing to wait for otherwise)."""
    wait = getattr(step._runner, "wait", None)
    if wait is not None:
        wait()


def _steady(step, *args) -> tuple[float, float]:
    """The median wall and CPU seconds of 5 calls."""
    walls, cpus = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        step(*args)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _load() -> float | None:
    """The 1-minute load average, where the OS has one."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compile_time")
    parser.add_argument("out", help="the JSON report's path")
    parser.add_argument("--workload", choices=WORKLOADS, default="lenet")
    parser.add_argument("--tiered", action="store_true",
                        help="compile with tiered=True (first calls interpreted)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    workload = args.workload
    before = _load()
    try:
        report = measure(workload, args.tiered)
    except Exception as exc:  # reported in the table's compile line
        report = {"workload": workload, "error": f"{type(exc).__name__}: {exc}"[:300]}
    report["load"] = [before, _load()]  # a busy machine stretches the wall time
    Path(args.out).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
