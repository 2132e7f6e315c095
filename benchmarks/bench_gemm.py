"""GFLOP/s of graphc's LLVM GEMM (and conv2d) against NumPy's BLAS, median of repeats.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_gemm.py [--threads N] [--sizes 256 1024]
        [--models] [--cpu-time]

Set OPENBLAS_NUM_THREADS to the thread count given, so both sides use the same cores.
--models adds the GEMMs of the MLP and Transformer training steps (transposed operands
read in place, batched attention). --cpu-time times one-thread runs by the calling
thread's CPU time, which a shared machine's other processes do not inflate.
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

CLOCK = time.perf_counter

# The GEMMs of the MLP (784-256-128-10, batch 128) and Transformer training steps:
# (name, batch, m, k, n, A transposed, B transposed).
MODEL_SHAPES = [
    ("mlp x@W1", 1, 128, 784, 256, False, False),
    ("mlp x^T@g1", 1, 784, 128, 256, True, False),
    ("mlp h@W2", 1, 128, 256, 128, False, False),
    ("mlp h^T@g2", 1, 256, 128, 128, True, False),
    ("mlp g@W^T", 1, 128, 128, 256, False, True),
    ("tf x@Wqkv", 1, 1024, 128, 384, False, False),
    ("tf x@W1", 1, 1024, 128, 512, False, False),
    ("tf h@W2", 1, 1024, 512, 128, False, False),
    ("tf g@W2^T", 1, 1024, 128, 512, False, True),
    ("tf x^T@g", 1, 128, 1024, 512, True, False),
    ("tf h^T@g", 1, 512, 1024, 128, True, False),
    ("attn q@k^T", 64, 64, 32, 64, False, True),
    ("attn p@v", 64, 64, 64, 32, False, False),
    ("attn p^T@g", 64, 64, 64, 32, True, False),
    ("attn q^T@g", 64, 32, 64, 64, True, False),
]


def median_seconds(fn, repeat: int, budget: float = 0.2) -> float:
    fn()
    start = CLOCK()
    fn()
    once = max(CLOCK() - start, 1e-6)
    inner = max(1, int(budget / once))
    times = []
    for _ in range(repeat):
        start = CLOCK()
        for _ in range(inner):
            fn()
        times.append((CLOCK() - start) / inner)
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


def model_case(shape, threads: int, repeat: int) -> tuple[float, float]:
    """GFLOP/s of one model GEMM (transposed operands are views read in place)."""
    _, batch, m, k, n, at, bt = shape
    rng = np.random.default_rng(0)
    lead = (batch,) if batch > 1 else ()
    shapes = (lead + ((k, m) if at else (m, k)), lead + ((n, k) if bt else (k, n)))
    x, y = (gc.input(name, s) for name, s in zip("ab", shapes))
    av, bv = (rng.normal(size=s).astype(np.float32) for s in shapes)

    def t(v, transposed):
        return gc.transpose(v, (0, 2, 1) if batch > 1 else (1, 0)) if transposed else v

    def tn(v, transposed):
        return np.swapaxes(v, -1, -2) if transposed else v

    fn = gc.compile([x, y], t(x, at) @ t(y, bt), threads=threads)
    np.testing.assert_allclose(fn(av, bv), tn(av, at) @ tn(bv, bt), rtol=1e-3, atol=1e-3)
    flops = 2.0 * batch * m * n * k
    return (flops / median_seconds(lambda: fn(av, bv), repeat) / 1e9,
            flops / median_seconds(lambda: tn(av, at) @ tn(bv, bt), repeat) / 1e9)


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
    parser.add_argument("--models", action="store_true", help="the model steps' GEMMs too")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by the calling thread's CPU time (one thread only)")
    args = parser.parse_args()
    if args.cpu_time:
        if args.threads != 1:
            parser.error("--cpu-time measures one thread: use it with --threads 1")
        global CLOCK
        CLOCK = time.thread_time
    print(f"threads={args.threads} OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    for dtype in ("float32", "float64"):
        for n in args.sizes:
            ours, blas = gemm_case(n, dtype, args.threads, args.repeat)
            print(f"gemm {dtype} n={n:5d}: graphc {ours:6.1f} GFLOP/s  numpy {blas:6.1f}  "
                  f"time ratio {blas / ours:5.2f}")
    if args.models:
        for shape in MODEL_SHAPES:
            ours, blas = model_case(shape, args.threads, args.repeat)
            _, batch, m, k, n, _, _ = shape
            size = f"{batch}x({m}x{k}x{n})" if batch > 1 else f"{m}x{k}x{n}"
            print(f"{shape[0]:12s} {size:16s}: graphc {ours:6.1f} GFLOP/s  numpy {blas:6.1f}  "
                  f"time ratio {blas / ours:5.2f}")
    if not args.no_conv:
        for which in CONV_PASSES:
            rate = conv_case(args.threads, args.repeat, which)
            print(f"conv2d {which:15s} float32: {rate:6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
