"""Multi-output kernels (fused_group) on LLVM: whole training steps with momentum SGD and
Adam, whose per-param updates the optimizer makes one fused_group each, agree with the
NumPy reference over several steps, write their params in place, and give the same bits
for any thread count."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.optim import SGD, Adam

RTOL = {"float32": 1e-4, "float64": 1e-10}
STEPS = 5


def _optimizer(name, params):
    if name == "momentum":
        return SGD(params, lr=0.05, momentum=0.9)
    return Adam(params, lr=1e-3)


def _training_step(optimizer, dtype, backend, threads=None):
    """A 2-layer tanh MLP with a bias that broadcasts, one training step per call. tanh,
    not relu: no dead unit has a near-zero gradient, whose last-bit differences (a float32
    matmul summed in another order) Adam's division by sqrt(v) would blow up to O(lr)."""
    rng = np.random.default_rng(0)
    w0 = gc.param("w0", rng.normal(0, 0.3, (12, 16)).astype(dtype))
    b0 = gc.param("b0", rng.normal(0, 0.1, (16,)).astype(dtype))
    w1 = gc.param("w1", rng.normal(0, 0.3, (16, 5)).astype(dtype))
    x, y = gc.input("x", ("N", 12), dtype), gc.input("y", ("N",), "int32")
    loss = gc.softmax_cross_entropy(gc.tanh(x @ w0 + b0) @ w1, y)
    updates = _optimizer(optimizer, [w0, b0, w1]).updates(loss)
    options = {} if threads is None else {"threads": threads}
    step = gc.compile([x, y], [loss], updates=updates, backend=backend, **options)
    data = [rng.normal(size=(9, 12)).astype(dtype), rng.integers(0, 5, 9).astype(np.int32)]
    return step, data


def _train(optimizer, dtype, backend, threads=None):
    step, data = _training_step(optimizer, dtype, backend, threads)
    losses = [step(*data)[0] for _ in range(STEPS)]
    return step, losses, {p.name: p.value.copy() for p, _ in step.program.updates}


@pytest.mark.parametrize("dtype", sorted(RTOL))
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_training_steps_match_numpy(optimizer, dtype):
    step, losses, params = _train(optimizer, dtype, "llvm")
    _, expected_losses, expected = _train(optimizer, dtype, "numpy")
    groups = [n for n in step.program.graph.nodes if n.op == "fused_group"]
    assert len(groups) == 3  # one per param: w0, b0, w1
    np.testing.assert_allclose(losses, expected_losses, rtol=RTOL[dtype])
    assert params.keys() == expected.keys()
    for name, value in params.items():
        np.testing.assert_allclose(value, expected[name], rtol=RTOL[dtype], err_msg=name)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_group_outputs_are_written_into_their_params(optimizer):
    step, data = _training_step(optimizer, "float32", "llvm")
    step(*data)
    plan = step.compiled().plan
    grouped = {p for p, value in step.program.updates if value.op == "group_output"}
    assert len(grouped) == (6 if optimizer == "momentum" else 9)
    assert grouped <= plan.inplace_params


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_identical_for_thread_counts_1_and_2(optimizer):
    _, losses_1, params_1 = _train(optimizer, "float32", "llvm", threads=1)
    _, losses_2, params_2 = _train(optimizer, "float32", "llvm", threads=2)
    np.testing.assert_array_equal(losses_1, losses_2)
    for name, value in params_1.items():
        np.testing.assert_array_equal(value, params_2[name], err_msg=name)


def test_cache_keys_tell_groups_apart():
    """The disk-cache key serializes a group's expressions: two momentum steps that differ
    only in the coefficient inside the group get different keys."""
    from graphc.backends.llvm.runtime.key import program_key

    keys = set()
    for mu in (0.9, 0.8):
        p = gc.param("p", np.ones((2, 3), np.float32))
        v = gc.param("v", np.zeros((2, 3), np.float32))
        g = gc.input("g", (2, 3))
        step = gc.compile([g], [], updates={v: mu * v + g, p: p - 0.05 * (mu * v + g)},
                          backend="numpy")
        assert {n.op for n in step.program.graph.nodes} >= {"fused_group", "group_output"}
        keys.add(program_key(step.program, {}))
    assert len(keys) == 2
