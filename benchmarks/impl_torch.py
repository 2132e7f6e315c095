"""The workloads in PyTorch, eager or under torch.compile (default mode).

Training steps are functional (the params are leaf tensors, the layers torch.nn.functional
calls), so the math is the same as the other frameworks' by construction; attention uses
scaled_dot_product_attention, the call a PyTorch user would make. Under torch.compile the
forward and loss are compiled (AOTAutograd compiles the backward with them); the SGD update
is torch.optim.SGD's eager foreach step. conv2d backward calls aten's
convolution_backward directly, so no forward convolution is timed with it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

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
    """`run()` does one call; `results()` gives the loss and updated params, or the op's
    outputs, as numpy arrays."""

    def __init__(self, call: Callable[[], list], params: list):
        self._call, self._params, self._last = call, params, []

    def run(self) -> None:
        self._last = self._call()

    def results(self) -> list[np.ndarray]:
        return [t.detach().numpy().copy() for t in (*self._last, *self._params)]


def build(w: Workload, threads: int, compiled: bool = False) -> Runner:
    torch.set_num_threads(threads)
    data = {k: torch.from_numpy(a) for k, a in w.arrays().items()}
    wrap = torch.compile if compiled else (lambda f: f)
    if w.kind == "train":
        return _train(w, data, wrap)
    if w.kind == "gemm":
        fn, args = wrap(torch.matmul), (data["a"], data["b"])
    elif w.kind == "conv_forward":
        pad = w.conv[-1]
        fn, args = wrap(lambda x, k: F.conv2d(x, k, padding=pad)), (data["x"], data["w"])
    elif w.kind == "conv_backward":
        pad = w.conv[-1]

        def fn(x, k, g):
            dx, dw, _ = torch.ops.aten.convolution_backward(
                g, x, k, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1,
                [True, True, False])
            return dx, dw
        fn, args = wrap(fn), (data["x"], data["w"], data["g"])
    elif w.kind == "elementwise":
        fn = wrap(lambda a, b, c, d: torch.relu(a * b + c) * torch.sigmoid(d))
        args = tuple(data[k] for k in "abcd")
    else:
        raise ValueError(f"torch: unknown workload kind {w.kind!r}")

    def call() -> list:
        with torch.no_grad():
            out = fn(*args)
        return list(out) if isinstance(out, tuple) else [out]
    return Runner(call, [])


def _train(w: Workload, data: dict, wrap) -> Runner:
    params = [torch.tensor(v, requires_grad=True) for v in w.params()]
    x, y = data["x"], data["y"].long()
    loss_fn = wrap(lambda x, y: F.cross_entropy(forward(w, params, x), y))
    optimizer = torch.optim.SGD(params, lr=LEARNING_RATE)

    def step() -> list:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(x, y)
        loss.backward()
        optimizer.step()
        return [loss]
    return Runner(step, params)


def forward(w: Workload, params: list, x: torch.Tensor) -> torch.Tensor:
    """The logits of w's layers applied to x."""
    it = iter(params)
    for layer in w.layers:
        if isinstance(layer, Dense):
            weight, bias = next(it), next(it)
            x = torch.addmm(bias, x, weight)
        elif isinstance(layer, Conv):
            x = F.conv2d(x, next(it), next(it), padding=layer.pad)
        elif isinstance(layer, ReLU):
            x = F.relu(x)
        elif isinstance(layer, MaxPool):
            x = F.max_pool2d(x, layer.k)
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], -1)
        elif isinstance(layer, Encoder):
            x = encoder(layer, [next(it) for _ in layer.param_specs()], x)
        elif isinstance(layer, MeanPool):
            x = x.mean(dim=1)
        else:
            raise TypeError(f"torch: unknown layer {layer!r}")
    return x


def encoder(layer: Encoder, p: list, x: torch.Tensor) -> torch.Tensor:
    """The pre-LayerNorm block of workloads.Encoder on x of shape (B, T, d)."""
    ln1w, ln1b, wqkv, bqkv, wo, bo, ln2w, ln2b, w1, b1, w2, b2 = p
    b, t, d = x.shape
    heads = layer.heads
    h = F.layer_norm(x, (d,), ln1w, ln1b, 1e-5)
    qkv = (h @ wqkv + bqkv).reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
    x = x + (o.transpose(1, 2).reshape(b, t, d) @ wo + bo)
    h = F.layer_norm(x, (d,), ln2w, ln2b, 1e-5)
    return x + (F.gelu(h @ w1 + b1) @ w2 + b2)
