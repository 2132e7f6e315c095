"""The workloads in graphc: the raw DSL, gc.grad, and one gc.compile of the whole step
(forward, loss, backward and SGD update) on the "llvm" or the "numpy" backend."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

import graphc as gc
from benchmarks.workloads import (
    LEARNING_RATE,
    Conv,
    Dense,
    Encoder,
    Flatten,
    MaxPool,
    MeanPool,
    ReLU,
    Workload,
)


class Runner:
    """`run()` does one call and returns when its results are ready; `results()` gives
    them as numpy arrays (the loss and the updated params, or the op's outputs)."""

    def __init__(self, call: Callable[[], list], params: list):
        self._call, self._params, self._last = call, params, []

    def run(self) -> None:
        self._last = self._call()

    def results(self) -> list[np.ndarray]:
        return [np.asarray(a) for a in self._last] + [p.value.copy() for p in self._params]


def build(w: Workload, threads: int, backend: str = "llvm") -> Runner:
    options = {"threads": threads} if backend == "llvm" else {}
    data = w.arrays()
    inputs = {name: gc.input(name, a.shape, a.dtype.name) for name, a in data.items()}
    params: list = []
    updates = None
    if w.kind == "train":
        params = [gc.param(f"p{i}", v) for i, v in enumerate(w.params())]
        loss = gc.softmax_cross_entropy(forward(w, params, inputs["x"]), inputs["y"])
        grads = gc.grad(loss, params)
        updates = {p: p - LEARNING_RATE * g for p, g in zip(params, grads)}
        outputs = [loss]
    elif w.kind == "gemm":
        outputs = [inputs["a"] @ inputs["b"]]
    elif w.kind == "conv_forward":
        outputs = [gc.conv2d(inputs["x"], inputs["w"], padding=w.conv[-1])]
    elif w.kind == "conv_backward":
        x, weight, g = inputs["x"], inputs["w"], inputs["g"]
        y = gc.conv2d(x, weight, padding=w.conv[-1])
        outputs = gc.grad(gc.sum(y * g), [x, weight])
    elif w.kind == "elementwise":
        a, b, c, d = (inputs[k] for k in "abcd")
        outputs = [gc.relu(a * b + c) * gc.sigmoid(d)]
    else:
        raise ValueError(f"graphc: unknown workload kind {w.kind!r}")
    step = gc.compile(list(inputs.values()), outputs, updates=updates, backend=backend,
                      **options)
    args = list(data.values())
    return Runner(lambda: step(*args), params)


def forward(w: Workload, params: list, x):
    """The logits of w's layers applied to x."""
    it = iter(params)
    for layer in w.layers:
        if isinstance(layer, Dense):
            x = x @ next(it) + next(it)
        elif isinstance(layer, Conv):
            x = gc.conv2d(x, next(it), next(it), padding=layer.pad)
        elif isinstance(layer, ReLU):
            x = gc.relu(x)
        elif isinstance(layer, MaxPool):
            x = gc.max_pool2d(x, layer.k)
        elif isinstance(layer, Flatten):
            x = gc.reshape(x, (x.shape[0], -1))
        elif isinstance(layer, Encoder):
            x = encoder(layer, [next(it) for _ in layer.param_specs()], x)
        elif isinstance(layer, MeanPool):
            x = gc.mean(x, axis=1)
        else:
            raise TypeError(f"graphc: unknown layer {layer!r}")
    return x


def encoder(layer: Encoder, p: list, x):
    """The pre-LayerNorm block of workloads.Encoder on x of shape (B, T, d)."""
    ln1w, ln1b, wqkv, bqkv, wo, bo, ln2w, ln2b, w1, b1, w2, b2 = p
    b, t, d = x.shape[0], int(x.shape[1]), int(x.shape[2])  # the batch may be symbolic
    heads, dh = layer.heads, d // layer.heads
    h = gc.layer_norm(x, ln1w, ln1b)
    qkv = gc.transpose(gc.reshape(h @ wqkv + bqkv, (b, t, 3, heads, dh)), (2, 0, 3, 1, 4))
    q, k, v = qkv[0], qkv[1], qkv[2]
    attention = gc.softmax((q @ gc.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(dh)))
    o = gc.reshape(gc.transpose(attention @ v, (0, 2, 1, 3)), (b, t, d))
    x = x + (o @ wo + bo)
    h = gc.layer_norm(x, ln2w, ln2b)
    return x + (gc.gelu(h @ w1 + b1) @ w2 + b2)
