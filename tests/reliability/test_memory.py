"""Long training runs do not grow the process: thousands of compiled steps, RSS measured."""

import gc as python_gc

import numpy as np
import pytest

import graphc as gc
from tests.backends.test_llvm_models import lenet, mlp, transformer
from tests.backends_available import BACKENDS


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def small_cnn(dtype):
    """A digits-sized CNN with dropout (so the random stream runs every step too)."""
    rng = np.random.default_rng(0)
    x = gc.input("x", ("N", 1, 8, 8), dtype)
    y = gc.input("y", ("N",), "int32")
    w1 = gc.param("w1", rng.normal(0, 0.3, (4, 1, 3, 3)).astype(dtype))
    w2 = gc.param("w2", rng.normal(0, 0.3, (64, 10)).astype(dtype))
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, w1, padding=1)), 2)
    h = gc.dropout(h, 0.2, seed=1)
    loss = gc.softmax_cross_entropy(h.reshape(h.shape[0], -1) @ w2, y)
    data = [rng.normal(size=(16, 1, 8, 8)).astype(dtype), rng.integers(0, 10, 16).astype("int32")]
    return [x, y], loss, [w1, w2], data


def training_step(model, backend):
    inputs, loss, params, data = model("float32")
    grads = gc.grad(loss, params)
    step = gc.compile(inputs, loss, updates={p: p - 0.01 * g for p, g in zip(params, grads)},
                      backend=backend)
    return lambda: step(*data)


CASES = [("numpy", small_cnn)] + [("llvm", m) for m in (small_cnn, mlp, lenet, transformer)
                                  if "llvm" in BACKENDS]


@pytest.mark.parametrize("backend, model", CASES, ids=[f"{b}-{m.__name__}" for b, m in CASES])
def test_thousands_of_steps_do_not_grow_memory(backend, model):
    step = training_step(model, backend)
    for _ in range(200):  # warm up: caches, allocator pools
        step()
    python_gc.collect()
    before = resident_bytes()
    for _ in range(1500):
        step()
    python_gc.collect()
    growth = resident_bytes() - before
    # leaking even one small intermediate per step (16 KiB) would add 24 MiB
    assert growth < 8 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB"
