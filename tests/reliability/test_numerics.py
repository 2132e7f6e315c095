"""Extreme but finite inputs give finite results wherever the math is finite, on every
backend, the same as the NumPy reference."""

import numpy as np
import pytest

import graphc as gc
from tests.backends_available import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_cross_entropy_with_huge_logits(backend, dtype):
    logits = gc.input("logits", (3, 3), dtype)
    labels = gc.input("labels", (3,), "int32")
    loss = gc.softmax_cross_entropy(logits, labels)
    (g,) = gc.grad(loss, [logits])
    f = gc.compile([logits, labels], [gc.softmax(logits), gc.log_softmax(logits), loss, g],
                   backend=backend)
    a = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, 0.0]], dtype)
    y = np.array([1, 0, 2], np.int32)
    sm, lsm, value, grad = f(a, y)
    for out in (sm, lsm, value, grad):
        assert np.all(np.isfinite(out))
    np.testing.assert_allclose(sm[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(sm[2], [0.5, 0.5, 0.0], atol=1e-7)
    assert value == pytest.approx((2e4 + np.log(3) + (1e4 + np.log(2))) / 3, rel=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_and_its_gradient_at_plus_minus_1e3(backend):
    x = gc.input("x", (4,), "float32")
    s = gc.sigmoid(x)
    (g,) = gc.grad(gc.sum(s), [x])
    bce = gc.binary_cross_entropy_with_logits(x, gc.constant(np.array([0, 1, 0, 1], np.float32)))
    f = gc.compile([x], [s, g, bce], backend=backend)
    values, grads, loss = f(np.array([-1e3, 1e3, 1e3, -1e3], np.float32))
    np.testing.assert_array_equal(values, [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(grads, [0.0, 0.0, 0.0, 0.0])
    assert np.isfinite(loss) and loss == pytest.approx(500.0, rel=1e-6)  # two of four terms are 1e3


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_of_zero_is_minus_infinity_not_an_error(backend):
    x = gc.input("x", (2,), "float64")
    f = gc.compile([x], gc.log(x), backend=backend)
    np.testing.assert_array_equal(f(np.array([0.0, 1.0])), [-np.inf, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_norm_of_a_constant_row_is_finite(backend):
    x = gc.input("x", (2, 4), "float32")
    w = gc.param("w", np.ones(4, np.float32))
    out = gc.layer_norm(x, w, None)
    (gw,) = gc.grad(gc.sum(out * out), [w])
    f = gc.compile([x], [out, gw], backend=backend)
    y, g = f(np.array([[3.0] * 4, [1.0, 2.0, 3.0, 4.0]], np.float32))
    np.testing.assert_array_equal(y[0], np.zeros(4))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))
