"""The reference backend (graphc/backends/numpy.py): the interpreter runs the optimized
program node by node for any binding of its symbolic dims, and answers the backend
interface (compiled, profile, memory_report) like the LLVM backend does."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ir.program import Program


def _relu_sum(backend: str = "numpy"):
    x = gc.input("x", ("N", 3))
    w = gc.param("w", np.arange(6, dtype=np.float32).reshape(3, 2) - 2.0)
    return x, gc.compile([x], gc.relu(x @ w).sum(), backend=backend)


def test_runs_every_binding_of_a_symbolic_dim_like_numpy():
    _, f = _relu_sum()
    w = np.arange(6, dtype=np.float32).reshape(3, 2) - 2.0
    for n in (1, 4, 7):
        x = np.linspace(-1, 1, 3 * n, dtype=np.float32).reshape(n, 3)
        np.testing.assert_allclose(f(x), np.maximum(x @ w, 0).sum(), rtol=1e-6)


def test_compiled_is_the_optimized_program_it_interprets():
    _, f = _relu_sum()
    program = f.compiled(np.ones((4, 3), np.float32))
    assert isinstance(program, Program)
    assert [n.op for n in program.outputs] == ["fused_reduce"]  # relu and sum fused


def test_profile_times_kernels_at_the_call_shapes_and_no_leaves():
    _, f = _relu_sum()
    profile = f.profile(np.ones((5, 3), np.float32), calls=2)
    assert profile.backend == "numpy" and profile.calls == 2
    assert sorted(k.op for k in profile.kernels) == ["fused_reduce", "matmul"]
    assert {k.op: k.shape for k in profile.kernels}["matmul"] == (5, 2)
    assert all(k.seconds >= 0 for k in profile.kernels)


def test_plans_no_memory():
    _, f = _relu_sum()
    f(np.ones((2, 3), np.float32))
    assert f.memory_report() == {}


def test_refuses_options_it_does_not_know_naming_them():
    x = gc.input("x", (3,))
    with pytest.raises(TypeError, match=r"numpy backend: unknown options \['fast'\]"):
        gc.compile([x], x * 2.0, backend="numpy", fast=True)


def test_agrees_with_the_llvm_backend_on_the_same_step():
    x, reference = _relu_sum("numpy")
    _, native = _relu_sum("llvm")
    data = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    np.testing.assert_allclose(native(data), reference(data), rtol=1e-6)
