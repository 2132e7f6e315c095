"""Conv2d, pooling and Flatten layers against small hand-written loops."""

import numpy as np
import pytest

import graphc as gc
from graphc import nn


def run(layer, x):
    inp = gc.input("x", ("N",) + x.shape[1:], x.dtype)
    return gc.compile([inp], layer(inp), backend="numpy")(x)


def test_conv2d_matches_a_direct_loop():
    layer = nn.Conv2d(2, 3, 3, padding=1, rng=0, dtype="float64")
    layer.bias.value = np.array([0.5, -1.0, 2.0])
    x = np.random.default_rng(1).normal(size=(2, 2, 4, 5))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    w, b = layer.weight.value, layer.bias.value
    expected = np.zeros((2, 3, 4, 5))
    for n in range(2):
        for o in range(3):
            for i in range(4):
                for j in range(5):
                    expected[n, o, i, j] = (padded[n, :, i:i + 3, j:j + 3] * w[o]).sum() + b[o]
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-12)


def test_conv2d_weight_is_oihw_with_he_init():
    layer = nn.Conv2d(4, 8, (3, 2), rng=0)
    assert layer.weight.shape == (8, 4, 3, 2) and layer.bias.shape == (8,)
    with pytest.raises(ValueError, match=r"Conv2d.*\(N, 4, H, W\)"):
        layer(gc.input("x", ("N", 3, 8, 8)))


def test_pools():
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    blocks = x.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    np.testing.assert_array_equal(run(nn.MaxPool2d(2), x), blocks.max(-1))
    np.testing.assert_array_equal(run(nn.AvgPool2d(2), x), blocks.mean(-1))


def test_conv_relu_pool_flatten_linear_stack():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 10, rng=1))
    assert list(model.named_params()) == ["0.weight", "0.bias", "4.weight", "4.bias"]
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8)).astype(np.float32)
    assert run(model, x).shape == (3, 10)
