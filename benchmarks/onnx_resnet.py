"""Inference of an imported ONNX model, graphc against ONNX Runtime at the same thread
count: the ResNet-18-shaped CNN for 32x32 images (benchmarks/onnx_models.py, exported
from PyTorch), at batch 1 and batch 32.

    python -m benchmarks.onnx_resnet [--threads 1 2] [--batches 1 32] [--width 64]
        [--target host] [--repeat 7] [--json out.json]

Both run the same ONNX file: graphc imports it (gc.onnx.load) and compiles it with the
LLVM backend (threads=T, code for --target), ONNX Runtime runs it with
intra_op_num_threads=T and one inter-op thread, all graph optimizations on. The outputs
are checked to agree first.
Times are medians of --repeat timed runs (each run loops long enough to last ~0.2 s);
ratio = graphc / ONNX Runtime, lower is better. Issue 17's goal: at or below 1.0 at
batch 32, within 1.5 at batch 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import graphc as gc  # noqa: E402


def median_seconds(fn, repeat: int, budget: float = 0.2) -> float:
    """The median time of one call of fn over `repeat` timed loops of ~budget seconds."""
    fn()
    start = time.perf_counter()
    fn()
    inner = max(1, int(budget / max(time.perf_counter() - start, 1e-6)))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def resnet_onnx(width: int) -> bytes:
    import torch

    from benchmarks.onnx_models import ResNet18, export, seeded

    return export(seeded(ResNet18(width=width)), torch.zeros(2, 3, 32, 32))


def ort_session(data: bytes, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def measure(data: bytes, threads: int, batches: list[int], repeat: int,
            target: str = "host") -> list[dict]:
    """One row per batch size: graphc's and ONNX Runtime's median seconds per call."""
    session = ort_session(data, threads)
    function = gc.onnx.load(data).compile(backend="llvm", threads=threads, target=target)
    rows = []
    for batch in batches:
        x = np.random.default_rng(batch).normal(size=(batch, 3, 32, 32)).astype(np.float32)
        started = time.perf_counter()
        (ours,) = function(x)  # the first call compiles this batch size
        first = time.perf_counter() - started
        (theirs,) = session.run(None, {"x": x})
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4 * np.abs(theirs).max())
        graphc_s = median_seconds(lambda x=x: function(x), repeat)
        ort_s = median_seconds(lambda x=x: session.run(None, {"x": x}), repeat)
        rows.append({"threads": threads, "batch": batch, "graphc_ms": graphc_s * 1e3,
                     "onnxruntime_ms": ort_s * 1e3, "ratio": graphc_s / ort_s,
                     "first_call_s": first})
    return rows


def goal(row: dict) -> str:
    limit = 1.0 if row["batch"] >= 32 else 1.5
    return "ok" if row["ratio"] <= limit else "MISS"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 32])
    parser.add_argument("--width", type=int, default=64,
                        help="channels of the first stage (64: ResNet-18's)")
    parser.add_argument("--target", default="host",
                        help="graphc's code level: host, x86-64-v2/v3/v4 or an LLVM CPU name")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", default=None, help="write every figure to this file")
    args = parser.parse_args(argv)
    data = resnet_onnx(args.width)
    rows = []
    for threads in args.threads:
        rows += measure(data, threads, args.batches, args.repeat, args.target)
    from benchmarks.suite import machine

    print(f"CPU {machine('')['cpu']}; graphc code for target {args.target}")
    print(f"imported ResNet-18-shaped CNN (width {args.width}), 3x32x32, float32")
    print(f"{'threads':>7} {'batch':>5} {'graphc ms':>10} {'ORT ms':>10} {'ratio':>6}  goal"
          f"  {'graphc 1st call s':>17}")
    for r in rows:
        print(f"{r['threads']:>7} {r['batch']:>5} {r['graphc_ms']:>10.3f} "
              f"{r['onnxruntime_ms']:>10.3f} {r['ratio']:>6.2f}  {goal(r):<4}  "
              f"{r['first_call_s']:>17.1f}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(rows, file, indent=1)
    return rows


if __name__ == "__main__":
    main()
