"""Long training runs and many compiles do not grow the process: RSS measured over
thousands of compiled steps and hundreds of compiled-and-dropped functions."""

import gc as python_gc

import numpy as np
import pytest

import graphc as gc
from tests.backends_available import BACKENDS
from tests.models.builders import lenet, mlp, transformer


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Compile into a fresh disk cache, never ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


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


def growth_per_cycle(cycle, cycles: int = 200, warm_up: int = 20) -> float:
    """Bytes of RSS that `cycles` calls of `cycle(k)` add per call, measured over the last
    half after a warm-up and the first half (caches and allocator pools fill up first)."""
    for k in range(warm_up + cycles // 2):
        cycle(k)
    python_gc.collect()
    before = resident_bytes()
    for k in range(warm_up + cycles // 2, warm_up + cycles):
        cycle(k)
    python_gc.collect()
    return (resident_bytes() - before) / (cycles - cycles // 2)


TINY_IR = """
define i64 @f(i64 %a) {
entry:
  %b = mul i64 %a, K
  ret i64 %b
}
"""


@pytest.mark.skipif("llvm" not in BACKENDS, reason="needs the LLVM backend")
def test_native_compiles_free_what_llvm_allocated():
    """Object code made (parse, O3, codegen) and loaded into an engine, then dropped, 200
    times: the path every compile that misses the cache takes. Each compile used to keep
    ~60 KB here (the O3 pass manager was never freed), ~90 KB per gc.compile."""
    from graphc.backends.llvm.runtime import target

    def cycle(k):
        loaded = target.Loaded(target.compile_object(TINY_IR.replace("K", str(k))))
        assert loaded.address("f")

    growth = growth_per_cycle(cycle)
    # llvmlite 0.50 itself keeps ~1.6 KB per optimization (LLVMPY_CreatePassBuilder's
    # PassInstrumentationCallbacks are never deleted)
    assert growth < 16 * 2**10, f"{growth / 2**10:.1f} KiB per compile kept"


@pytest.mark.skipif("llvm" not in BACKENDS, reason="needs the LLVM backend")
def test_functions_compiled_and_dropped_do_not_grow_memory():
    """gc.compile of one small function and a call, 200 times (after the first, each is a
    disk cache hit: a fresh engine per function, dropped with it)."""
    x = gc.input("x", ("N", 8), "float32")
    data = np.ones((4, 8), np.float32)

    def cycle(k):
        f = gc.compile([x], gc.tanh(x) * 0.5 + 1.0, backend="llvm")
        f(data)

    growth = growth_per_cycle(cycle)
    assert growth < 16 * 2**10, f"{growth / 2**10:.1f} KiB per compile kept"
