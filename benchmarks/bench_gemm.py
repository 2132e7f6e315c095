"""GFLOP/s of graphc's LLVM GEMM (and conv2d) against NumPy's BLAS, median of repeats.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_gemm.py [--threads N] [--sizes 256 1024]

Set OPENBLAS_NUM_THREADS to the thread count given, so both sides use the same cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import graphc as gc  # noqa: E402


def median_seconds(fn, repeat: int, budget: float = 0.2) -> float:
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    inner = max(1, int(budget / once))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def gemm_case(n: int, dtype: str, threads: int, repeat: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    a, b = (rng.normal(size=(n, n)).astype(dtype) for _ in range(2))
    x, y = gc.input("a", (n, n), dtype), gc.input("b", (n, n), dtype)
    fn = gc.compile([x, y], x @ y, threads=threads)
    np.testing.assert_allclose(fn(a, b), a @ b, rtol=1e-3 if dtype == "float32" else 1e-10,
                               atol=1e-3 if dtype == "float32" else 1e-10)
    flops = 2.0 * n ** 3
    return (flops / median_seconds(lambda: fn(a, b), repeat) / 1e9,
            flops / median_seconds(lambda: a @ b, repeat) / 1e9)


CONV_PASSES = ("forward", "input gradient", "weight gradient", "backward")


def conv_case(threads: int, repeat: int, which: str) -> float:
    """N=32 C=64 32x32 K=64 3x3 pad 1, float32: GFLOP/s of the forward pass, of one
    gradient, or of the backward pass (both gradients)."""
    rng = np.random.default_rng(0)
    xv = rng.normal(size=(32, 64, 32, 32)).astype(np.float32)
    wv = (rng.normal(size=(64, 64, 3, 3)) * 0.05).astype(np.float32)
    x, w = gc.input("x", xv.shape), gc.input("w", wv.shape)
    y = gc.conv2d(x, w, padding=1)
    flops = 2.0 * 32 * 64 * 32 * 32 * 64 * 9
    if which == "forward":
        fn = gc.compile([x, w], y, threads=threads)
        return flops / median_seconds(lambda: fn(xv, wv), repeat) / 1e9
    wrt = {"input gradient": [x], "weight gradient": [w], "backward": [x, w]}[which]
    g = gc.input("g", y.shape)
    fn = gc.compile([x, w, g], gc.grad(gc.sum(y * g), wrt), threads=threads)
    gv = rng.normal(size=(32, 64, 32, 32)).astype(np.float32)
    return len(wrt) * flops / median_seconds(lambda: fn(xv, wv, gv), repeat) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="*", default=[128, 256, 512, 1024])
    parser.add_argument("--no-conv", action="store_true")
    args = parser.parse_args()
    print(f"threads={args.threads} OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    for dtype in ("float32", "float64"):
        for n in args.sizes:
            ours, blas = gemm_case(n, dtype, args.threads, args.repeat)
            print(f"gemm {dtype} n={n:5d}: graphc {ours:6.1f} GFLOP/s  numpy {blas:6.1f}  "
                  f"time ratio {blas / ours:5.2f}")
    if not args.no_conv:
        for which in CONV_PASSES:
            rate = conv_case(args.threads, args.repeat, which)
            print(f"conv2d {which:15s} float32: {rate:6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
