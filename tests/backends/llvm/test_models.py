"""Whole models on the LLVM backend against the NumPy backend: an MLP, a LeNet-style CNN
and a Transformer block (attention, layer norm, GELU, dropout), forward, backward and five
SGD update steps, float64 and float32. Each backend trains its own copy of the params,
built from the same seed."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from tests.models.builders import lenet, mlp, transformer

TOL = {"float64": dict(rtol=1e-10, atol=1e-12),
       # float32: values and gradients pass through long sums (matmul, conv, softmax), so
       # elements that cancel are compared against an absolute bound of float32 rounding.
       "float32": dict(rtol=1e-4, atol=1e-5)}


MODELS = {"mlp": mlp, "lenet": lenet, "transformer": transformer}


def _train(build, dtype, backend, steps=5, lr=0.1):
    inputs, loss, params, data = build(dtype)
    grads = gc.grad(loss, params)
    step = gc.compile(inputs, [loss, *grads], backend=backend,
                      updates={p: p - lr * g for p, g in zip(params, grads)})
    history = [step(*data) for _ in range(steps)]
    return history, [p.value.copy() for p in params]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(MODELS))
def test_training_steps_agree(name, dtype):
    got, got_params = _train(MODELS[name], dtype, "llvm")
    expected, expected_params = _train(MODELS[name], dtype, "numpy")
    for step, (g, e) in enumerate(zip(got, expected)):
        for k, (a, b) in enumerate(zip(g, e)):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_allclose(a, b, **TOL[dtype],
                                       err_msg=f"{name} step {step} result {k}")
    losses = [float(h[0]) for h in got]
    assert losses[-1] < losses[0], "training did not lower the loss: the check is void"
    for a, b in zip(got_params, expected_params):
        np.testing.assert_allclose(a, b, **TOL[dtype])
