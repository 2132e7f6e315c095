"""The reference workloads of the benchmarks, free of any framework: layer lists, shapes, the
initial weights and data (numpy, from a seed, handed to every framework), FLOP counts and
the target ratios.

FLOP counts are analytic and count only the multiply-adds of matmuls and convolutions, two
FLOPs each (elementwise work, softmax, normalization and the SGD update are left out; they
are small next to the products, except in the elementwise chain, counted on its own):
- dense (B, i) @ (i, o): 2*B*i*o.
- conv N x C x H x W with K filters R x S, output Ho x Wo: 2*N*K*C*R*S*Ho*Wo.
- attention with batch B, length T, width d: QK^T and AV are 2*B*T*T*d each.
- a training step: forward F, then backward 2F (the input gradient and the weight
  gradient of every product cost one forward each), less the input gradient of the first
  layer when nothing upstream needs it (mlp, lenet, digits-cnn): 3F - F_first.
  In the transformer the first product follows a LayerNorm with parameters, so every
  input gradient is needed: 3F.
- gemm n: 2n^3. conv2d backward: input gradient + weight gradient = 2 * forward.
- the elementwise chain relu(a*b + c) * sigmoid(d): 8 FLOPs an element (mul, add, max,
  mul, and sigmoid as neg, exp, add, div); it is memory-bound (5 arrays of 4 bytes an
  element move), so its fraction of FMA peak says little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SEED = 0
LEARNING_RATE = 0.01
CLASSES = 10


# ----- layers of the training workloads ------------------------------------------------------

@dataclass(frozen=True)
class Dense:
    """x @ W + b, W of shape (n_in, n_out)."""
    n_in: int
    n_out: int

    def param_specs(self) -> list[tuple[tuple[int, ...], str]]:
        return [((self.n_in, self.n_out), "he"), ((self.n_out,), "bias")]


@dataclass(frozen=True)
class Conv:
    """conv2d (NCHW, OIHW weight, stride 1) plus a bias per output channel."""
    c_in: int
    c_out: int
    k: int
    pad: int = 0

    def param_specs(self) -> list[tuple[tuple[int, ...], str]]:
        return [((self.c_out, self.c_in, self.k, self.k), "he"), ((self.c_out,), "bias")]


@dataclass(frozen=True)
class ReLU:
    def param_specs(self) -> list[tuple[tuple[int, ...], str]]:
        return []


@dataclass(frozen=True)
class MaxPool:
    """max_pool2d with kernel and stride k."""
    k: int = 2

    def param_specs(self) -> list[tuple[tuple[int, ...], str]]:
        return []


@dataclass(frozen=True)
class Flatten:
    def param_specs(self) -> list[tuple[tuple[int, ...], str]]:
        return []


@dataclass(frozen=True)
class Encoder:
    """One pre-LayerNorm Transformer encoder block over (B, T, d):
    x += Wo(attention(LN1(x) @ Wqkv + bqkv)) + bo;  x += W2 gelu(LN2(x) @ W1 + b1) + b2.
    Wqkv's 3d outputs are read as (3, heads, d/heads); exact (erf) GELU; LN eps 1e-5."""
    d: int
    heads: int
    hidden: int

    def param_specs(self) -> list[tuple[tuple[int, ...], str]]:
        d, h = self.d, self.hidden
        return [((d,), "one"), ((d,), "bias"), ((d, 3 * d), "he"), ((3 * d,), "bias"),
                ((d, d), "he"), ((d,), "bias"), ((d,), "one"), ((d,), "bias"),
                ((d, h), "he"), ((h,), "bias"), ((h, d), "he"), ((d,), "bias")]


@dataclass(frozen=True)
class MeanPool:
    """The mean over the sequence axis: (B, T, d) -> (B, d)."""
    def param_specs(self) -> list[tuple[tuple[int, ...], str]]:
        return []


Layer = Dense | Conv | ReLU | MaxPool | Flatten | Encoder | MeanPool


# ----- workloads --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """One row of the table. kind: "train" (a training step of `layers`), "gemm",
    "conv_forward", "conv_backward" or "elementwise". target: the issue's bound on the
    ratio graphc / best alternative (None where the issue sets none)."""
    name: str
    kind: str
    target: float | None = None
    layers: tuple = ()
    input_shape: tuple[int, ...] = ()   # one example, without the batch axis
    batch: int = 0
    n: int = 0                          # gemm size, or elementwise length
    conv: tuple[int, ...] = ()          # N, C, H, W, K, R (square), pad
    notes: dict = field(default_factory=dict, compare=False)

    # -- the data every framework receives --

    def params(self) -> list[np.ndarray]:
        """Initial weights: He-normal weights, small random biases and LayerNorm affines
        near (1, 0), so that every parameter's gradient is exercised."""
        rng = np.random.default_rng(SEED)
        out = []
        for layer in self.layers:
            for shape, init in layer.param_specs():
                if init == "he":
                    fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
                    value = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
                else:
                    value = (init == "one") + 0.02 * rng.standard_normal(shape)
                out.append(value.astype(np.float32))
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The inputs of one call, by name."""
        rng = np.random.default_rng(SEED + 1)
        f32 = np.float32
        if self.kind == "train":
            return {"x": rng.standard_normal((self.batch, *self.input_shape)).astype(f32),
                    "y": rng.integers(0, CLASSES, self.batch).astype(np.int32)}
        if self.kind == "gemm":
            return {k: rng.standard_normal((self.n, self.n)).astype(f32) for k in "ab"}
        if self.kind in ("conv_forward", "conv_backward"):
            n, c, h, w, k, r, pad = self.conv
            out = {"x": rng.standard_normal((n, c, h, w)).astype(f32),
                   "w": (rng.standard_normal((k, c, r, r)) / math.sqrt(c * r * r)).astype(f32)}
            if self.kind == "conv_backward":
                out["g"] = rng.standard_normal((n, k, h + 2 * pad - r + 1,
                                                w + 2 * pad - r + 1)).astype(f32)
            return out
        if self.kind == "elementwise":
            return {k: rng.standard_normal(self.n).astype(f32) for k in "abcd"}
        raise ValueError(f"workload {self.name}: unknown kind {self.kind!r}")

    # -- work counts --

    def flops(self) -> float:
        """FLOPs of one call (see the module docstring for the formulas)."""
        if self.kind == "train":
            forward = layer_flops(self.layers, self.batch, self.input_shape)
            first = 0 if isinstance(self.layers[0], Encoder) else forward[0]
            return 3 * sum(forward) - first
        if self.kind == "gemm":
            return 2.0 * self.n ** 3
        if self.kind in ("conv_forward", "conv_backward"):
            n, c, h, w, k, r, pad = self.conv
            ho, wo = h + 2 * pad - r + 1, w + 2 * pad - r + 1
            forward = 2.0 * n * k * c * r * r * ho * wo
            return forward if self.kind == "conv_forward" else 2 * forward
        if self.kind == "elementwise":
            return 8.0 * self.n
        raise ValueError(f"workload {self.name}: unknown kind {self.kind!r}")

    def bytes(self) -> float | None:
        """Bytes one call must move, for the memory-bound elementwise chain (4 arrays
        read, 1 written); None for the workloads measured in FLOPs."""
        return 5 * 4.0 * self.n if self.kind == "elementwise" else None


def layer_flops(layers, batch: int, input_shape: tuple[int, ...]) -> list[float]:
    """Forward FLOPs of each layer (products only), walking the shapes through the net."""
    shape = (batch, *input_shape)
    out = []
    for layer in layers:
        flops = 0.0
        if isinstance(layer, Dense):
            flops = 2.0 * shape[0] * layer.n_in * layer.n_out
            shape = (shape[0], layer.n_out)
        elif isinstance(layer, Conv):
            n, _, h, w = shape
            ho, wo = h + 2 * layer.pad - layer.k + 1, w + 2 * layer.pad - layer.k + 1
            flops = 2.0 * n * layer.c_out * layer.c_in * layer.k ** 2 * ho * wo
            shape = (n, layer.c_out, ho, wo)
        elif isinstance(layer, MaxPool):
            shape = (*shape[:2], shape[2] // layer.k, shape[3] // layer.k)
        elif isinstance(layer, Flatten):
            shape = (shape[0], int(np.prod(shape[1:])))
        elif isinstance(layer, Encoder):
            b, t, d = shape
            tokens = b * t
            flops = 2.0 * tokens * d * (3 * d + d + 2 * layer.hidden) + 2 * 2.0 * b * t * t * d
        elif isinstance(layer, MeanPool):
            shape = (shape[0], shape[2])
        out.append(flops)
    return out


def _train(name: str, layers: list, input_shape: tuple[int, ...], batch: int,
           target: float | None) -> Workload:
    return Workload(name, "train", target, tuple(layers), input_shape, batch)


def mlp(batch: int = 128, sizes=(784, 256, 128, 10)) -> Workload:
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [Dense(a, b)] + ([ReLU()] if i < len(sizes) - 2 else [])
    return _train("mlp", layers, (sizes[0],), batch, 0.85)


def lenet(batch: int = 64) -> Workload:
    layers = [Conv(1, 6, 5, 2), ReLU(), MaxPool(2), Conv(6, 16, 5), ReLU(), MaxPool(2),
              Flatten(), Dense(400, 120), ReLU(), Dense(120, 84), ReLU(), Dense(84, 10)]
    return _train("lenet", layers, (1, 28, 28), batch, 0.30)


def digits_cnn(batch: int = 64, c1: int = 16, c2: int = 32) -> Workload:
    layers = [Conv(1, c1, 3, 1), ReLU(), MaxPool(2), Conv(c1, c2, 3, 1), ReLU(), MaxPool(2),
              Flatten(), Dense(c2 * 4, 10)]
    return _train("digits-cnn", layers, (1, 8, 8), batch, 0.25)


def transformer(batch: int = 16, seq: int = 64, d: int = 128, heads: int = 4,
                hidden: int = 512) -> Workload:
    layers = [Encoder(d, heads, hidden), MeanPool(), Dense(d, CLASSES)]
    return _train("transformer", layers, (seq, d), batch, 0.70)


def gemm(n: int) -> Workload:
    return Workload(f"gemm {n}", "gemm", 1.05 if n == 1024 else None, n=n)


def conv2d(kind: str, n: int = 32, c: int = 64, hw: int = 32, k: int = 64) -> Workload:
    target = 0.6 if kind == "conv_forward" else 0.8
    label = "fwd" if kind == "conv_forward" else "bwd"
    return Workload(f"conv2d {label}", kind, target, conv=(n, c, hw, hw, k, 3, 1))


def elementwise(n: int = 4 * 1024 * 1024) -> Workload:
    return Workload("elementwise", "elementwise", 0.9, n=n)


GEMM_SIZES = (256, 512, 1024, 2048)
QUICK_GEMM_SIZES = (256, 1024)


def reference(quick: bool = False) -> list[Workload]:
    """The issue's workloads at the issue's sizes (with --quick, fewer gemm sizes)."""
    sizes = QUICK_GEMM_SIZES if quick else GEMM_SIZES
    return [mlp(), lenet(), digits_cnn(), transformer(), *(gemm(n) for n in sizes),
            conv2d("conv_forward"), conv2d("conv_backward"), elementwise()]


def tiny() -> list[Workload]:
    """The same workloads at sizes small enough for a unit test (same layer structure
    wherever the structure does not fix the size)."""
    return [mlp(batch=4, sizes=(20, 16, 12, 10)), lenet(batch=2), digits_cnn(batch=3, c1=4, c2=8),
            transformer(batch=2, seq=5, d=16, heads=4, hidden=32), gemm(24),
            conv2d("conv_forward", n=2, c=3, hw=6, k=4),
            conv2d("conv_backward", n=2, c=3, hw=6, k=4), elementwise(1000)]


def by_name(workloads: list[Workload]) -> dict[str, Workload]:
    return {w.name: w for w in workloads}
