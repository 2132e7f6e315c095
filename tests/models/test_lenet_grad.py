"""A LeNet-style CNN end to end on the NumPy backend: gc.grad of the cross-entropy with
respect to every param against central finite differences at sampled coordinates."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

SAMPLES = 20  # coordinates per param


def _lenet(rng: np.random.Generator):
    """(params, x, labels, loss) of conv 6@5x5 pad 2, relu, maxpool 2, conv 16@5x5, relu,
    maxpool 2, flatten, linear 120, relu, linear 84, relu, linear 10, cross-entropy."""
    def weight(name, shape, fan_in):
        return gc.param(name, rng.normal(0.0, np.sqrt(2.0 / fan_in), shape))

    def bias(name, n):
        return gc.param(name, rng.normal(0.0, 0.1, n))

    params = [weight("c1", (6, 1, 5, 5), 25), bias("c1b", 6),
              weight("c2", (16, 6, 5, 5), 150), bias("c2b", 16),
              weight("f1", (400, 120), 400), bias("f1b", 120),
              weight("f2", (120, 84), 120), bias("f2b", 84),
              weight("f3", (84, 10), 84), bias("f3b", 10)]
    c1, c1b, c2, c2b, f1, f1b, f2, f2b, f3, f3b = params
    x = gc.input("x", ("N", 1, 28, 28), "float64")
    labels = gc.input("labels", ("N",), "int64")
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, c1, c1b, padding=2)), 2)
    h = gc.max_pool2d(gc.relu(gc.conv2d(h, c2, c2b)), 2)
    assert h.shape[1:] == (16, 5, 5)
    h = gc.reshape(h, (h.shape[0], 400))
    h = gc.relu(h @ f1 + f1b)
    h = gc.relu(h @ f2 + f2b)
    loss = gc.softmax_cross_entropy(h @ f3 + f3b, labels)
    return params, x, labels, loss


def test_lenet_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    params, x, labels, loss = _lenet(rng)
    grads = gc.grad(loss, params)
    loss_fn = gc.compile([x, labels], loss, backend="numpy")
    grad_fn = gc.compile([x, labels], grads, backend="numpy")
    xv = rng.normal(size=(2, 1, 28, 28))
    yv = np.array([3, 7])
    analytic = grad_fn(xv, yv)
    eps = 1e-6
    for param, g in zip(params, analytic, strict=True):
        assert g.shape == param.value.shape
        assert np.abs(g).max() > 1e-6, f"{param.name}: gradient vanished, the check is void"
        for flat in rng.choice(g.size, size=min(SAMPLES, g.size), replace=False):
            idx = np.unravel_index(flat, g.shape)
            old = param.value[idx]
            param.value[idx] = old + eps
            up = float(loss_fn(xv, yv))
            param.value[idx] = old - eps
            down = float(loss_fn(xv, yv))
            param.value[idx] = old
            # central differences, eps 1e-6, float64: error about 1e-10 on a loss near 2.3.
            assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8), \
                f"d loss / d {param.name}{tuple(int(i) for i in idx)}"
