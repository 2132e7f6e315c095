"""Small models the tests train on several backends: an MLP, a LeNet-style CNN and a
pre-norm Transformer block, each built from a fixed seed as (inputs, loss, params, data)."""

from __future__ import annotations

import numpy as np

import graphc as gc


def _params(rng, dtype, shapes):
    return [gc.param(f"p{k}", (rng.normal(size=s) * scale).astype(dtype))
            for k, (s, scale) in enumerate(shapes)]


def mlp(dtype):
    rng = np.random.default_rng(0)
    w1, b1, w2, b2 = _params(rng, dtype, [((20, 32), 0.3), ((32,), 0.1), ((32, 5), 0.3),
                                          ((5,), 0.1)])
    x = gc.input("x", ("N", 20), dtype)
    y = gc.input("y", ("N",), "int64")
    loss = gc.softmax_cross_entropy(gc.tanh(x @ w1 + b1) @ w2 + b2, y)
    data = [rng.normal(size=(16, 20)).astype(dtype), rng.integers(0, 5, 16)]
    return [x, y], loss, [w1, b1, w2, b2], data


def lenet(dtype):
    rng = np.random.default_rng(1)
    params = _params(rng, dtype, [((6, 1, 5, 5), 0.3), ((6,), 0.1), ((16, 6, 5, 5), 0.1),
                                  ((16,), 0.1), ((400, 32), 0.05), ((32,), 0.1),
                                  ((32, 10), 0.2), ((10,), 0.1)])
    c1, c1b, c2, c2b, f1, f1b, f2, f2b = params
    x = gc.input("x", ("N", 1, 28, 28), dtype)
    y = gc.input("y", ("N",), "int64")
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, c1, c1b, padding=2)), 2)
    h = gc.avg_pool2d(gc.relu(gc.conv2d(h, c2, c2b)), 2)
    h = gc.relu(gc.reshape(h, (h.shape[0], 400)) @ f1 + f1b)
    loss = gc.softmax_cross_entropy(h @ f2 + f2b, y)
    data = [rng.normal(size=(4, 1, 28, 28)).astype(dtype), rng.integers(0, 10, 4)]
    return [x, y], loss, params, data


def transformer(dtype):
    """One pre-norm encoder block over (B, T, D) with 2 heads, then a mean-pooled head."""
    rng = np.random.default_rng(2)
    d, heads, t = 16, 2, 6
    params = _params(rng, dtype, [((d, 3 * d), 0.2), ((d, d), 0.2), ((d,), 0.1), ((d,), 0.1),
                                  ((d, 32), 0.2), ((32,), 0.1), ((32, d), 0.2), ((d,), 0.1),
                                  ((d, 3), 0.3)])
    wqkv, wo, g1, b1, w1, c1, w2, c2, head = params
    x = gc.input("x", ("B", t, d), dtype)
    y = gc.input("y", ("B",), "int64")
    h = gc.layer_norm(x, g1 + 1.0, b1)
    qkv = h @ wqkv
    q, k, v = (gc.transpose(gc.reshape(qkv[:, :, i * d:(i + 1) * d], (-1, t, heads, d // heads)),
                            (0, 2, 1, 3)) for i in range(3))
    scores = gc.softmax(q @ gc.transpose(k, (0, 1, 3, 2)) * (1.0 / np.sqrt(d // heads)))
    attention = gc.reshape(gc.transpose(scores @ v, (0, 2, 1, 3)), (-1, t, d))
    x = x + gc.dropout(attention @ wo, 0.1, seed=3)
    x = x + gc.gelu(gc.layer_norm(x) @ w1 + c1) @ w2 + c2
    loss = gc.softmax_cross_entropy(gc.mean(x, axis=1) @ head, y)
    data = [rng.normal(size=(3, t, d)).astype(dtype), rng.integers(0, 3, 3)]
    return [_input_of(loss, "x"), y], loss, params, data


def _input_of(loss, name):
    return next(n for n in gc.Graph([loss]) if n.op == "input" and n.name == name)
