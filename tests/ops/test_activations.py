"""The activations (graphc/ops/activations.py) against PyTorch, the oracle: values over a
wide range (large, tiny, infinite, NaN) in float32 and float64 on both backends, and
gradients everywhere, at each kink included (PyTorch's conventions there)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import graphc as gc
from graphc.errors import GraphError

ACTIVATIONS = {  # name: (graphc, torch, the kinks)
    "softplus": (gc.softplus, F.softplus, [20.0]),
    "softplus_beta": (lambda x: gc.softplus(x, beta=2.0, threshold=5.0),
                      lambda x: F.softplus(x, beta=2.0, threshold=5.0), [2.5]),
    "elu": (lambda x: gc.elu(x, alpha=0.7), lambda x: F.elu(x, alpha=0.7), [0.0]),
    "selu": (gc.selu, F.selu, [0.0]),
    "celu": (lambda x: gc.celu(x, alpha=2.0), lambda x: F.celu(x, alpha=2.0), [0.0]),
    "mish": (gc.mish, F.mish, []),
    "hardswish": (gc.hardswish, F.hardswish, [-3.0, 3.0]),
    "hardsigmoid": (gc.hardsigmoid, F.hardsigmoid, [-3.0, 3.0]),
    "hardtanh": (lambda x: gc.hardtanh(x, -2.0, 0.5), lambda x: F.hardtanh(x, -2.0, 0.5),
                 [-2.0, 0.5]),
    "relu6": (gc.relu6, F.relu6, [0.0, 6.0]),
    "log_sigmoid": (gc.log_sigmoid, F.logsigmoid, [0.0]),
    "softsign": (gc.softsign, F.softsign, [0.0]),
    "silu": (gc.silu, F.silu, []),
}

VALUES = np.concatenate([np.linspace(-40, 40, 801), [-1e30, -700, -100, -1e-30, 0.0, -0.0,
                                                     1e-30, 100, 700, 1e30, np.inf, -np.inf,
                                                     np.nan]])


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_values_match_pytorch(name, dtype, backend):
    ours, theirs, _ = ACTIVATIONS[name]
    values = VALUES.astype(dtype)
    x = gc.input("x", values.shape, dtype)
    got = gc.compile([x], ours(x), backend=backend)(values)
    expected = theirs(torch.from_numpy(values)).numpy()
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=4 * np.finfo(dtype).eps,
                               atol=4 * np.finfo(dtype).tiny)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_gradients_match_pytorch_at_the_kinks_and_around(name):
    ours, theirs, kinks = ACTIVATIONS[name]
    values = np.concatenate([np.linspace(-8, 8, 161), kinks, [-100.0, 100.0, 1e-300]])
    x = gc.input("x", values.shape, "float64")
    (got,) = gc.compile([x], gc.grad(gc.sum(ours(x)), [x]))(values)
    t = torch.from_numpy(values).requires_grad_()
    (expected,) = torch.autograd.grad(theirs(t).sum(), [t])
    # PyTorch's float64 hardsigmoid gradient is float32's 1/6 (0.16666667163...) inside.
    rtol = 3e-8 if name == "hardsigmoid" else 1e-13
    np.testing.assert_allclose(got, expected.numpy(), rtol=rtol, atol=1e-300)


def test_defaults_and_argument_names_are_pytorchs():
    x = gc.input("x", (3,), "float64")
    assert gc.softplus(x).attrs == {"beta": 1.0, "threshold": 20.0}
    assert gc.elu(x).attrs == {"alpha": 1.0} and gc.celu(x).attrs == {"alpha": 1.0}
    assert gc.hardtanh(x).attrs == {"min_val": -1.0, "max_val": 1.0}
    assert gc.softplus(x, beta=2, threshold=3).attrs == {"beta": 2.0, "threshold": 3.0}
    assert gc.logsigmoid is gc.log_sigmoid


def test_ints_keep_their_dtype_through_hardtanh_and_relu6():
    for backend in ("numpy", "llvm"):
        n = gc.input("n", (5,), "int32")
        got = gc.compile([n], [gc.relu6(n), gc.hardtanh(n)], backend=backend)(
            np.array([-9, 0, 3, 6, 9], np.int32))
        np.testing.assert_array_equal(got[0], [0, 0, 3, 6, 6])
        np.testing.assert_array_equal(got[1], [-1, 0, 1, 1, 1])
        assert got[0].dtype == got[1].dtype == np.int32


@pytest.mark.parametrize("call, message", [
    (lambda x: gc.softplus(x, beta=0), "softplus: beta must be a nonzero number, got 0"),
    (lambda x: gc.softplus(x, threshold="20"), "softplus: threshold must be a number"),
    (lambda x: gc.celu(x, alpha=0.0), "celu: alpha must be a nonzero number"),
    (lambda x: gc.elu(x, alpha=True), "elu: alpha must be a number, got True"),
    (lambda x: gc.hardtanh(x, 1.0, -1.0), "hardtanh: min_val 1.0 is greater than max_val -1.0"),
    (lambda x: gc.hardtanh(x, float("nan")), "hardtanh: min_val must be a number, got nan"),
])
def test_bad_arguments_name_the_op_and_the_line(call, message):
    x = gc.input("x", (3,), "float32")
    with pytest.raises(GraphError, match=message + r".*\(at .*test_activations.py:\d+\)"):
        call(x)
