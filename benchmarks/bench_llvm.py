"""The LLVM backend against the NumPy backend: time per training step of the reference
models (MLP, LeNet, a Transformer block) and of a fused elementwise chain, as a ratio
(LLVM time / NumPy time, below 1 means LLVM is faster), and the cold (empty disk cache)
and warm (object code from the cache) compile times.

    python benchmarks/bench_llvm.py [--threads N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import graphc as gc  # noqa: E402


def _params(rng, shapes):
    return [gc.param(f"p{k}", (rng.normal(size=s) * scale).astype(np.float32))
            for k, (s, scale) in enumerate(shapes)]


def mlp():
    rng = np.random.default_rng(0)
    params = _params(rng, [((784, 256), 0.05), ((256,), 0.0), ((256, 10), 0.05), ((10,), 0.0)])
    w1, b1, w2, b2 = params
    x, y = gc.input("x", ("N", 784)), gc.input("y", ("N",), "int64")
    loss = gc.softmax_cross_entropy(gc.relu(x @ w1 + b1) @ w2 + b2, y)
    data = [rng.normal(size=(128, 784)).astype(np.float32), rng.integers(0, 10, 128)]
    return [x, y], loss, params, data


def lenet():
    rng = np.random.default_rng(1)
    params = _params(rng, [((6, 1, 5, 5), 0.2), ((6,), 0.0), ((16, 6, 5, 5), 0.1),
                           ((16,), 0.0), ((400, 120), 0.05), ((120,), 0.0), ((120, 10), 0.1),
                           ((10,), 0.0)])
    c1, c1b, c2, c2b, f1, f1b, f2, f2b = params
    x, y = gc.input("x", ("N", 1, 28, 28)), gc.input("y", ("N",), "int64")
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, c1, c1b, padding=2)), 2)
    h = gc.max_pool2d(gc.relu(gc.conv2d(h, c2, c2b)), 2)
    h = gc.relu(gc.reshape(h, (h.shape[0], 400)) @ f1 + f1b)
    loss = gc.softmax_cross_entropy(h @ f2 + f2b, y)
    data = [rng.normal(size=(32, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 32)]
    return [x, y], loss, params, data


def transformer():
    rng = np.random.default_rng(2)
    d, heads, t, ff = 64, 4, 32, 256
    params = _params(rng, [((d, 3 * d), 0.1), ((d, d), 0.1), ((d,), 0.0), ((d, ff), 0.1),
                           ((ff,), 0.0), ((ff, d), 0.05), ((d,), 0.0), ((d, 10), 0.1)])
    wqkv, wo, bo, w1, c1, w2, c2, head = params
    x0, y = gc.input("x", ("B", t, d)), gc.input("y", ("B",), "int64")
    h = gc.layer_norm(x0)
    qkv = h @ wqkv
    q, k, v = (gc.transpose(gc.reshape(qkv[:, :, i * d:(i + 1) * d], (-1, t, heads, d // heads)),
                            (0, 2, 1, 3)) for i in range(3))
    scores = gc.softmax(q @ gc.transpose(k, (0, 1, 3, 2)) * (1.0 / np.sqrt(d // heads)))
    attention = gc.reshape(gc.transpose(scores @ v, (0, 2, 1, 3)), (-1, t, d))
    x = x0 + attention @ wo + bo
    x = x + gc.gelu(gc.layer_norm(x) @ w1 + c1) @ w2 + c2
    loss = gc.softmax_cross_entropy(gc.mean(x, axis=1) @ head, y)
    data = [rng.normal(size=(8, t, d)).astype(np.float32), rng.integers(0, 10, 8)]
    return [x0, y], loss, params, data


def training_step(build, backend, threads):
    inputs, loss, params, data = build()
    grads = gc.grad(loss, params)
    options = {"threads": threads} if backend == "llvm" else {}
    fn = gc.compile(inputs, loss, backend=backend,
                    updates={p: p - 0.01 * g for p, g in zip(params, grads)}, **options)
    return fn, data


def fused_chain(backend, threads):
    a, b, c = (gc.input(n, ("N",)) for n in "abc")
    out = gc.sigmoid(a * b + c) * 0.5 - gc.relu(a) + gc.tanh(c) * b
    options = {"threads": threads} if backend == "llvm" else {}
    fn = gc.compile([a, b, c], out, backend=backend, **options)
    return fn, _CHAIN_DATA


_rng = np.random.default_rng(3)
_CHAIN_DATA = [_rng.normal(size=4_000_000).astype(np.float32) for _ in range(3)]


def seconds(fn, data, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*data)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def first_call(make):
    """(seconds of the first call of a freshly compiled function, the function, data)."""
    start = time.perf_counter()
    fn, data = make()
    fn(*data)
    return time.perf_counter() - start, fn, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    cases = {"mlp train step": lambda b, t: training_step(mlp, b, t),
             "lenet train step": lambda b, t: training_step(lenet, b, t),
             "transformer train step": lambda b, t: training_step(transformer, b, t),
             "fused chain 4M f32": fused_chain}
    print(f"threads={args.threads or 'all'}  repeat={args.repeat}  (times are medians)")
    print(f"{'case':<24}{'numpy ms':>10}{'llvm ms':>10}{'ratio':>8}{'cold ms':>10}"
          f"{'warm ms':>10}")
    with tempfile.TemporaryDirectory() as cache_home:
        os.environ["XDG_CACHE_HOME"] = cache_home
        for name, make in cases.items():
            fn, data = make("numpy", None)
            numpy_s = seconds(fn, data, max(3, args.repeat // 4))
            cold, fn, data = first_call(lambda make=make: make("llvm", args.threads))
            llvm_s = seconds(fn, data, args.repeat)
            warm, _, _ = first_call(lambda make=make: make("llvm", args.threads))
            print(f"{name:<24}{numpy_s * 1e3:>10.2f}{llvm_s * 1e3:>10.2f}"
                  f"{llvm_s / numpy_s:>8.2f}{(cold - llvm_s) * 1e3:>10.0f}"
                  f"{(warm - llvm_s) * 1e3:>10.0f}")
    print("ratio = llvm / numpy; cold = first call with an empty disk cache minus a steady "
          "call (graph build, optimize, plan, IR, O3, load); warm = the same with the object "
          "code in the cache")


if __name__ == "__main__":
    main()
