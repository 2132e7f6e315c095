"""The small conv net whose training step the compile-cache tests store and load, in
this process and in fresh ones (which import it from here, not from a test module)."""

from __future__ import annotations

import numpy as np

import graphc as gc


def conv_step(seed: int = 0, **options):
    """A small conv net's training step (static shapes), its params and a batch."""
    rng = np.random.default_rng(seed)
    x = gc.input("x", (4, 1, 8, 8))
    y = gc.input("y", (4,), "int32")
    w = gc.param("w", rng.normal(0, 0.3, (3, 1, 3, 3)).astype(np.float32))
    v = gc.param("v", rng.normal(0, 0.3, (27, 5)).astype(np.float32))
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, w, padding=1)), 2)
    loss = gc.softmax_cross_entropy(gc.reshape(h, (4, -1))[:, :27] @ v, y)
    gw, gv = gc.grad(loss, [w, v])
    step = gc.compile([x, y], [loss], updates={w: w - 0.1 * gw, v: v - 0.1 * gv}, **options)
    data = (rng.normal(size=(4, 1, 8, 8)).astype(np.float32),
            np.array([0, 1, 4, 2], np.int32))
    return step, (w, v), data


def train(step, params, data, calls: int = 3) -> list[np.ndarray]:
    losses = [step(*data)[0] for _ in range(calls)]
    return losses + [p.value.copy() for p in params]
