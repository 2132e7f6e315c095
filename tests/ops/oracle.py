"""PyTorch as the oracle of graphc's ops that follow it: a graph and a torch function of the
same arrays, compared forward and in the gradient of sum(out * w) for random weights w, on
both backends (one compile per backend for the value and every gradient)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

import graphc as gc

BACKENDS = ("numpy", "llvm")


def tolerance(dtype) -> float:
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-10


def agree_with_torch(build: Callable, reference: Callable, arrays: Sequence[np.ndarray],
                     grad: bool = True, seed: int = 0, backends=BACKENDS, **options) -> None:
    """build(*nodes) -> graph value and reference(*tensors) -> tensor agree: values, and
    with `grad` the gradients of every float input; NaNs must sit in the same places."""
    arrays = [np.asarray(a) for a in arrays]
    nodes = [gc.input(f"in{k}", a.shape, a.dtype.name) for k, a in enumerate(arrays)]
    out = build(*nodes)
    tensors = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    expected = reference(*tensors)
    outputs = [out]
    floats = [k for k, a in enumerate(arrays) if a.dtype.kind == "f"]
    if grad:
        weights = np.random.default_rng(seed).normal(size=tuple(expected.shape)).astype(
            out.dtype)
        outputs += gc.grad(gc.sum(out * gc.constant(weights)), [nodes[k] for k in floats],
                           allow_unused=True)
        (expected * torch.tensor(weights)).sum().backward()
    wanted = [expected.detach().numpy()]
    wanted += [tensors[k].grad.numpy() if tensors[k].grad is not None
               else np.zeros_like(arrays[k]) for k in floats] if grad else []
    for backend in backends:
        got = gc.compile(nodes, outputs, backend=backend, **options)(*arrays)
        for k, (g, w) in enumerate(zip(got, wanted)):
            what = "value" if k == 0 else f"gradient of input {floats[k - 1]}"
            assert g.shape == w.shape, f"{backend} {what}: shape {g.shape} != torch's {w.shape}"
            if w.dtype.kind in "fc":
                tol = tolerance(arrays[0].dtype if arrays[0].dtype.kind == "f" else w.dtype)
                np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True,
                                           err_msg=f"{backend} {what}")
            else:
                np.testing.assert_array_equal(g, w, err_msg=f"{backend} {what}")


def both_backends(inputs, outputs, *arrays, **options) -> list:
    """The results of a program on the NumPy and LLVM backends (LLVM's second)."""
    return [gc.compile(inputs, outputs, backend=b, **(options if b == "llvm" else {}))(*arrays)
            for b in BACKENDS]
