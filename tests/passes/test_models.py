"""Kernel counts of whole training steps after optimization (kernels as report.py defines
them), with the bounds set from what was measured when the passes were written, and the
optimized steps checked against the unoptimized ones on the NumPy reference."""

import numpy as np
import pytest

import graphc as gc
from graphc.passes.report import count_kernels

from . import models

# (model, optimizer) -> the kernel count measured after optimization (an upper bound)
MEASURED = {
    ("mlp", "sgd"): 33, ("mlp", "momentum"): 39, ("mlp", "adam"): 48,
    ("lenet", "sgd"): 54, ("lenet", "adam"): 77,
    ("transformer_block", "sgd"): 90, ("transformer_block", "adam"): 114,
}


@pytest.mark.parametrize("model, optimizer", sorted(MEASURED))
def test_training_step_kernel_count(model, optimizer, capsys):
    inputs, loss, updates, arrays = getattr(models, model)(getattr(models, optimizer))
    step = gc.compile(inputs, [loss], updates=updates, backend="numpy")
    plain = gc.compile(inputs, [loss], updates=updates, backend="numpy", optimize=False)
    report = step.report()
    with capsys.disabled():
        print(f"\n{model} + {optimizer}\n{report}")
    assert count_kernels(step.program) <= MEASURED[model, optimizer]
    assert count_kernels(step.program) < count_kernels(plain.program) * 0.6
    assert f"kernels left: {count_kernels(step.program)} " in report

    before = [p.value.copy() for p, _ in step.program.updates]
    (l_opt,) = step(*arrays)
    after_opt = [p.value.copy() for p, _ in step.program.updates]
    for (p, _), value in zip(step.program.updates, before):
        p.value = value
    (l_plain,) = plain(*arrays)
    # Same ops in the same order except the stable rewrites: a few float32 ulps.
    np.testing.assert_allclose(l_opt, l_plain, rtol=1e-5)
    for (p, _), value in zip(step.program.updates, after_opt):
        np.testing.assert_allclose(value, p.value, rtol=1e-4, atol=1e-6)


def test_each_param_update_is_one_kernel_over_its_gradient():
    """SGD: the update of each param is one kernel reading the gradient kernel's output, or
    the epilogue of the matmul that computes the gradient."""
    inputs, loss, updates, _ = models.mlp(models.sgd)
    step = gc.compile(inputs, [loss], updates=updates, backend="numpy")
    for param, value in step.program.updates:
        if value.op == "fused_matmul":  # W - lr * (x.T @ delta): the gradient's epilogue
            assert value.inputs[2:] == (param,)
        else:  # b - lr * sum(delta): one kernel over the reduction's output
            assert value.op == "fused" and set(value.inputs) == {param, value.inputs[0]}
            assert value.inputs[0].op == "sum"


def test_adam_update_is_one_kernel_per_updated_tensor():
    inputs, loss, updates, _ = models.mlp(models.adam)
    step = gc.compile(inputs, [loss], updates=updates, backend="numpy")
    stored = {value for _, value in step.program.updates}
    for _, value in step.program.updates:
        assert value.op in ("fused", "fused_matmul")
        # its operands are params, the gradient, or the new moments (other updates)
        extras = value.inputs[2:] if value.op == "fused_matmul" else value.inputs
        assert all(i.op in ("param", "sum", "matmul") or i in stored for i in extras)
