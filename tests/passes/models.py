"""The reference models of the kernel-count tests, built from the gc.* DSL: an MLP, a
LeNet CNN and a Transformer block, each as a whole training step (forward, loss,
backward, optimizer update)."""

from __future__ import annotations

import numpy as np

import graphc as gc


def _param(rng, name, shape, scale=0.1):
    return gc.param(name, rng.normal(0, scale, shape).astype(np.float32))


def sgd(params, grads, lr=0.05):
    return {p: p - lr * g for p, g in zip(params, grads)}


def momentum(params, grads, lr=0.05, mu=0.9):
    updates = {}
    for p, g in zip(params, grads):
        v = gc.param(f"{p.name}.v", np.zeros(p.shape, np.float32))
        new_v = mu * v + g
        updates[v] = new_v
        updates[p] = p - lr * new_v
    return updates


def adam(params, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    updates = {}
    for p, g in zip(params, grads):
        m = gc.param(f"{p.name}.m", np.zeros(p.shape, np.float32))
        v = gc.param(f"{p.name}.v", np.zeros(p.shape, np.float32))
        new_m = b1 * m + (1 - b1) * g
        new_v = b2 * v + (1 - b2) * g * g
        updates[m], updates[v] = new_m, new_v
        updates[p] = p - lr * new_m / (gc.sqrt(new_v) + eps)
    return updates


def mlp(optimizer=sgd):
    """784-256-128-10 relu MLP, softmax cross-entropy: (inputs, loss, updates, arrays)."""
    rng = np.random.default_rng(0)
    x, y = gc.input("x", ("N", 784)), gc.input("y", ("N",), "int32")
    sizes = [784, 256, 128, 10]
    params, h = [], x
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        w, b = _param(rng, f"W{k}", (n_in, n_out), 0.05), _param(rng, f"b{k}", (n_out,))
        params += [w, b]
        h = h @ w + b
        if k < len(sizes) - 2:
            h = gc.relu(h)
    loss = gc.softmax_cross_entropy(h, y)
    arrays = [rng.normal(size=(16, 784)).astype(np.float32),
              rng.integers(0, 10, 16).astype(np.int32)]
    return [x, y], loss, optimizer(params, gc.grad(loss, params)), arrays


def lenet(optimizer=sgd):
    """LeNet-5 on 28x28 digits: conv-relu-pool twice, three linear layers."""
    rng = np.random.default_rng(1)
    x, y = gc.input("x", ("N", 1, 28, 28)), gc.input("y", ("N",), "int32")
    c1w, c1b = _param(rng, "c1w", (6, 1, 5, 5), 0.2), _param(rng, "c1b", (6,))
    c2w, c2b = _param(rng, "c2w", (16, 6, 5, 5), 0.1), _param(rng, "c2b", (16,))
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, c1w, c1b, 1, 2)), 2, 2, 0)
    h = gc.max_pool2d(gc.relu(gc.conv2d(h, c2w, c2b, 1, 0)), 2, 2, 0)
    h = gc.reshape(h, (-1, 16 * 5 * 5))
    params = [c1w, c1b, c2w, c2b]
    for k, (n_in, n_out) in enumerate([(400, 120), (120, 84), (84, 10)]):
        w, b = _param(rng, f"f{k}w", (n_in, n_out)), _param(rng, f"f{k}b", (n_out,))
        params += [w, b]
        h = h @ w + b
        if k < 2:
            h = gc.relu(h)
    loss = gc.softmax_cross_entropy(h, y)
    arrays = [rng.normal(size=(4, 1, 28, 28)).astype(np.float32),
              rng.integers(0, 10, 4).astype(np.int32)]
    return [x, y], loss, optimizer(params, gc.grad(loss, params)), arrays


def transformer_block(optimizer=sgd, d=32, t=8):
    """One pre-norm Transformer encoder block (single-head attention, gelu MLP) on
    (N, T, D) inputs, regressed onto a target with mse_loss."""
    rng = np.random.default_rng(2)
    x, target = gc.input("x", ("N", t, d)), gc.input("target", ("N", t, d))
    wq, wk, wv, wo = (_param(rng, name, (d, d)) for name in ("Wq", "Wk", "Wv", "Wo"))
    w1, b1 = _param(rng, "W1", (d, 4 * d)), _param(rng, "b1", (4 * d,))
    w2, b2 = _param(rng, "W2", (4 * d, d)), _param(rng, "b2", (d,))
    g1, be1 = gc.param("ln1.w", np.ones(d, np.float32)), gc.param("ln1.b", np.zeros(d, np.float32))
    g2, be2 = gc.param("ln2.w", np.ones(d, np.float32)), gc.param("ln2.b", np.zeros(d, np.float32))
    h = gc.layer_norm(x, g1, be1)
    q, k, v = h @ wq, h @ wk, h @ wv
    attention = gc.softmax(q @ gc.transpose(k, (0, 2, 1)) / float(np.sqrt(d)))
    x = x + (attention @ v) @ wo
    h = gc.layer_norm(x, g2, be2)
    x = x + gc.gelu(h @ w1 + b1) @ w2 + b2
    loss = gc.mse_loss(x, target)
    params = [wq, wk, wv, wo, w1, b1, w2, b2, g1, be1, g2, be2]
    arrays = [rng.normal(size=(2, t, d)).astype(np.float32),
              rng.normal(size=(2, t, d)).astype(np.float32)]
    return [gc.input("x", ("N", t, d)), target], loss, \
        optimizer(params, gc.grad(loss, params)), arrays
