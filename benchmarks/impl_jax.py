"""The workloads in JAX: a training step is one jax.jit of value_and_grad plus the SGD
update (params donated, so XLA may update them in place); ops are jitted functions;
conv2d backward is the jitted VJP of the convolution (XLA drops the unused forward)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

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

CONV_DIMS = ("NCHW", "OIHW", "NCHW")


class Runner:
    """`run()` does one call and waits for it; `results()` gives the loss and updated
    params, or the op's outputs, as numpy arrays."""

    def __init__(self, call: Callable[[], list], params: Callable[[], list]):
        self._call, self._params, self._last = call, params, []

    def run(self) -> None:
        self._last = self._call()
        jax.block_until_ready((self._last, self._params()))

    def results(self) -> list[np.ndarray]:
        return [np.array(a) for a in (*self._last, *self._params())]


def build(w: Workload, threads: int) -> Runner:
    """threads is unused: XLA_FLAGS and the CPU affinity set it before jax is imported
    (see benchmarks.child)."""
    data = {k: jnp.asarray(a) for k, a in w.arrays().items()}
    if w.kind == "train":
        return _train(w, data)
    pad = w.conv[-1] if w.conv else 0
    if w.kind == "gemm":
        fn, args = jnp.matmul, (data["a"], data["b"])
    elif w.kind == "conv_forward":
        fn, args = partial(conv, pad=pad), (data["x"], data["w"])
    elif w.kind == "conv_backward":
        def fn(x, k, g):
            return jax.vjp(partial(conv, pad=pad), x, k)[1](g)
        args = (data["x"], data["w"], data["g"])
    elif w.kind == "elementwise":
        def fn(a, b, c, d):
            return jax.nn.relu(a * b + c) * jax.nn.sigmoid(d)
        args = tuple(data[k] for k in "abcd")
    else:
        raise ValueError(f"jax: unknown workload kind {w.kind!r}")
    jitted = jax.jit(fn)

    def call() -> list:
        out = jitted(*args)
        return list(out) if isinstance(out, (tuple, list)) else [out]
    return Runner(call, list)


def _train(w: Workload, data: dict) -> Runner:
    state = {"params": [jnp.asarray(v) for v in w.params()]}
    x, y = data["x"], data["y"]

    def loss_fn(params, x, y):
        logp = jax.nn.log_softmax(forward(w, params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @partial(jax.jit, donate_argnums=0)
    def step(params, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return loss, [p - LEARNING_RATE * g for p, g in zip(params, grads)]

    def call() -> list:
        loss, state["params"] = step(state["params"], x, y)
        return [loss]
    return Runner(call, lambda: state["params"])


def conv(x, k, b=None, pad: int = 0):
    out = lax.conv_general_dilated(x, k, (1, 1), [(pad, pad), (pad, pad)],
                                   dimension_numbers=CONV_DIMS)
    return out if b is None else out + b[None, :, None, None]


def forward(w: Workload, params: list, x):
    """The logits of w's layers applied to x."""
    it = iter(params)
    for layer in w.layers:
        if isinstance(layer, Dense):
            x = x @ next(it) + next(it)
        elif isinstance(layer, Conv):
            x = conv(x, next(it), next(it), pad=layer.pad)
        elif isinstance(layer, ReLU):
            x = jax.nn.relu(x)
        elif isinstance(layer, MaxPool):
            window = (1, 1, layer.k, layer.k)
            x = lax.reduce_window(x, -jnp.inf, lax.max, window, window, "VALID")
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], -1)
        elif isinstance(layer, Encoder):
            x = encoder(layer, [next(it) for _ in layer.param_specs()], x)
        elif isinstance(layer, MeanPool):
            x = x.mean(axis=1)
        else:
            raise TypeError(f"jax: unknown layer {layer!r}")
    return x


def layer_norm(x, weight, bias, eps: float = 1e-5):
    centered = x - x.mean(axis=-1, keepdims=True)
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    return centered * lax.rsqrt(variance + eps) * weight + bias


def encoder(layer: Encoder, p: list, x):
    """The pre-LayerNorm block of workloads.Encoder on x of shape (B, T, d)."""
    ln1w, ln1b, wqkv, bqkv, wo, bo, ln2w, ln2b, w1, b1, w2, b2 = p
    b, t, d = x.shape
    heads, dh = layer.heads, d // layer.heads
    h = layer_norm(x, ln1w, ln1b)
    qkv = (h @ wqkv + bqkv).reshape(b, t, 3, heads, dh).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attention = jax.nn.softmax((q @ k.transpose(0, 1, 3, 2)) / np.sqrt(dh).astype(np.float32))
    o = (attention @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
    x = x + (o @ wo + bo)
    h = layer_norm(x, ln2w, ln2b)
    return x + (jax.nn.gelu(h @ w1 + b1, approximate=False) @ w2 + b2)
