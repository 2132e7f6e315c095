"""Kernel counts of whole training steps after optimization (kernels as report.py defines
them), with the bounds set from what was measured when the passes were written, and the
optimized steps checked against the unoptimized ones on the NumPy reference."""

import numpy as np
import pytest

import graphc as gc
from graphc.passes.report import count_kernels

from . import models

# (model, optimizer) -> the kernel count measured after optimization (an upper bound).
# The mlp and lenet steps end in softmax_cross_entropy, whose mean divides by the number
# of targets not equal to ignore_index (PyTorch's default -100) since issue 16: that count
# is one reduction and the division by it one scalar kernel more than a mean over N.
MEASURED = {
    ("mlp", "sgd"): 33, ("mlp", "momentum"): 36, ("mlp", "adam"): 36,
    ("lenet", "sgd"): 52, ("lenet", "adam"): 55,
    ("transformer_block", "sgd"): 78, ("transformer_block", "adam"): 84,
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


STATES = {"momentum": ("v",), "adam": ("m", "v")}


@pytest.mark.parametrize("optimizer", sorted(STATES))
def test_each_param_update_is_one_fused_group(optimizer):
    """Momentum and Adam: a param's new state tensors and its new value are the outputs of
    one fused_group, which reads the param, its old state and the gradient kernel's output
    (a matmul or a sum), never an update value back from memory."""
    inputs, loss, updates, _ = models.mlp(getattr(models, optimizer))
    step = gc.compile(inputs, [loss], updates=updates, backend="numpy")
    written: dict = {}
    for param, value in step.program.updates:
        assert value.op == "group_output"
        written.setdefault(value.inputs[0], []).append(param.name)
    params = [p.name for p in updates if "." not in p.name]  # W0, b0, ... (not W0.v)
    assert len(params) == 6
    expected = sorted(sorted([name, *(f"{name}.{s}" for s in STATES[optimizer])])
                      for name in params)
    assert sorted(map(sorted, written.values())) == expected
    for group, params in written.items():
        assert group.op == "fused_group" and len(group.attrs["exprs"]) == len(params)
        gradients = [i for i in group.inputs if i.op != "param"]
        assert [g.op for g in gradients] in (["matmul"], ["sum"])
