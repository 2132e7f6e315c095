"""Tiered functions (gc.compile(..., tiered=True)): calls of a binding whose native code is
not ready run on the NumPy interpreter while it compiles in the background; the native code
takes over once ready; both tiers continue one training run (params, call count, dropout's
stream), and a failed compile is raised at its binding's next call."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.tiered import TieredRunner, requested


def _dropout_step(seed: int = 0, **options):
    """A training step with a symbolic batch and dropout (its mask is drawn from the call
    count: both tiers must draw the same one)."""
    rng = np.random.default_rng(seed)
    x = gc.input("x", ("N", 6))
    y = gc.input("y", ("N",), "int32")
    w = gc.param("w", rng.normal(0, 0.5, (6, 8)).astype(np.float32))
    v = gc.param("v", rng.normal(0, 0.5, (8, 3)).astype(np.float32))
    h = gc.dropout(gc.gelu(x @ w), 0.3, seed=7)
    loss = gc.softmax_cross_entropy(h @ v, y)
    gw, gv = gc.grad(loss, [w, v])
    step = gc.compile([x, y], loss, updates={w: w - 0.1 * gw, v: v - 0.1 * gv}, **options)
    return step, (w, v), rng


def _batch(rng, n: int):
    return (rng.normal(size=(n, 6)).astype(np.float32),
            rng.integers(0, 3, n).astype(np.int32))


def test_a_tiered_run_matches_the_native_one_and_hands_over_to_native_code():
    tiered, tiered_params, rng = _dropout_step(tiered=True, threads=1)
    native, native_params, _ = _dropout_step(threads=1)
    batches = [_batch(rng, 5) for _ in range(4)] + [_batch(rng, 3) for _ in range(2)]
    runner = tiered._runner
    assert isinstance(runner, TieredRunner)
    losses = []
    for k, batch in enumerate(batches):
        losses.append((tiered(*batch), native(*batch)))
        if k in (0, 4):  # the first call of each batch size ran on the interpreter
            assert runner.interpreted_calls == (1 if k == 0 else 2)
            assert runner.wait(timeout=300)
    assert runner.interpreted_calls == 2  # every other call ran the compiled code
    for mine, theirs in losses:
        np.testing.assert_allclose(mine, theirs, rtol=2e-5)
    for mine, theirs in zip(tiered_params, native_params):
        np.testing.assert_allclose(mine.value, theirs.value, rtol=2e-5, atol=1e-6)
    assert tiered.step == native.step == len(batches)
    assert tiered.memory_report()["bindings_compiled"] == 2


def test_a_failed_background_compile_is_raised_at_the_next_call():
    class Broken:
        def ready(self, binding):
            return False

        def build(self, binding):
            raise ValueError("llvm backend: no lowering for this")

    step, _, rng = _dropout_step(backend="numpy")
    interpreter = step._runner
    runner = TieredRunner(Broken(), lambda: interpreter)
    x, y = _batch(rng, 4)
    binding = {step.inputs[0].shape[0]: 4}
    runner.run([x, y], binding, 0)  # interpreted; the compile fails meanwhile
    assert runner.wait(timeout=60)
    with pytest.raises(ValueError, match="no lowering for this"):
        runner.run([x, y], binding, 1)


def test_tiered_is_asked_for_by_option_or_environment(monkeypatch):
    monkeypatch.delenv("GRAPHC_TIERED", raising=False)
    assert requested(None) is False
    monkeypatch.setenv("GRAPHC_TIERED", "1")
    assert requested(None) is True
    assert requested(False) is False
    with pytest.raises(TypeError, match="tiered: expected True or False"):
        requested("yes")


def test_the_disk_cache_serves_tiered_and_untiered_functions_alike(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    first, _, rng = _dropout_step(tiered=True, threads=1)
    batch = _batch(rng, 4)
    first(*batch)
    assert first._runner.wait(timeout=300)
    again, _, _ = _dropout_step(tiered=True, threads=1)
    again(*batch)  # the compiled code is in the cache: no interpreted call
    assert again._runner.interpreted_calls == 0
    assert again.memory_report()["cache_hit"]
    plain, _, _ = _dropout_step(threads=1)
    plain(*batch)
    assert plain.memory_report()["cache_hit"]
