"""Long training runs do not grow the process: thousands of compiled steps, RSS measured."""

import gc as python_gc

import numpy as np
import pytest

import graphc as gc
from tests.backends_available import BACKENDS


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def small_cnn_step(backend):
    rng = np.random.default_rng(0)
    x = gc.input("x", ("N", 1, 8, 8))
    y = gc.input("y", ("N",), "int32")
    w1 = gc.param("w1", rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32))
    w2 = gc.param("w2", rng.normal(0, 0.3, (64, 10)).astype(np.float32))
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, w1, padding=1)), 2)
    h = gc.dropout(h, 0.2, seed=1)
    loss = gc.softmax_cross_entropy(h.reshape(h.shape[0], -1) @ w2, y)
    grads = gc.grad(loss, [w1, w2])
    step = gc.compile([x, y], loss, updates={p: p - 0.01 * g for p, g in zip([w1, w2], grads)},
                      backend=backend)
    xs = rng.normal(size=(16, 1, 8, 8)).astype(np.float32)
    ys = rng.integers(0, 10, 16).astype(np.int32)
    return lambda: step(xs, ys)


@pytest.mark.parametrize("backend", BACKENDS)
def test_thousands_of_steps_do_not_grow_memory(backend):
    step = small_cnn_step(backend)
    for _ in range(200):  # warm up: caches, allocator pools
        step()
    python_gc.collect()
    before = resident_bytes()
    for _ in range(1500):
        step()
    python_gc.collect()
    growth = resident_bytes() - before
    # a leak of even one small intermediate per step (16*4*8*8*4 = 16 KiB) would add 24 MiB
    assert growth < 8 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB"
