"""Exported models against the Python call, bit for bit: MLP, LeNet and Transformer
inference and a LeNet training step, from a C program (the typed NAME_run) and from
libNAME.so loaded by ctypes in a process without graphc."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from tests.export.harness import build_harness, compiler, run_c, run_ctypes
from tests.models import builders


def _equal(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        assert g.tobytes() == w.tobytes(), f"differs by up to {np.max(np.abs(g - w))}"


@pytest.fixture(scope="module")
def mlp_export(tmp_path_factory):
    compiler()
    inputs, _, (w1, b1, w2, b2), data = builders.mlp(np.float32)
    x = inputs[0]
    f = gc.compile([x], gc.tanh(x @ w1 + b1) @ w2 + b2, threads=1)
    want = f(data[0])
    exported = gc.export(f, tmp_path_factory.mktemp("mlp"), "mlp")
    return exported, [data[0]], [want]


def test_mlp_inference_from_c_is_the_python_call(mlp_export, tmp_path):
    exported, inputs, want = mlp_export
    (got,) = run_c(exported, tmp_path, inputs)
    _equal(got, want)


def test_mlp_at_two_threads_gives_the_same_bits(mlp_export, tmp_path):
    exported, inputs, want = mlp_export
    runs = run_c(exported, tmp_path, inputs, runs=3, threads=2)
    for got in runs:
        _equal(got, want)


def test_mlp_library_from_ctypes_without_graphc(mlp_export, tmp_path):
    exported, inputs, want = mlp_export
    (got,), refused = run_ctypes(exported, tmp_path, inputs)
    _equal(got, want)
    assert refused["refused"] == 2  # GRAPHC_EDIMS
    assert "dim N: this export was compiled for N=16, got 17" in refused["message"]


def _forward(builder, dtype=np.float32):
    """The model's loss as an inference function (no updates), called once: the call count
    the export starts from is 1."""
    inputs, loss, params, data = builder(dtype)
    f = gc.compile(inputs, [loss], threads=1)
    f(*data)
    return f, data


@pytest.mark.parametrize("builder", [builders.lenet, builders.transformer],
                         ids=["lenet", "transformer"])
def test_inference_from_c_is_the_python_call(builder, tmp_path):
    compiler()
    f, data = _forward(builder)
    exported = gc.export(f, tmp_path / "out", "net")
    assert exported.manifest["initial_step"] == 1
    want = f(*data)  # the call count is 1 for both (the transformer's dropout draws from it)
    program = build_harness(exported, tmp_path)
    (got,) = run_c(exported, tmp_path, data, program=program)
    _equal(got, want)
    (again,) = run_c(exported, tmp_path, data, program=program)  # a fresh context: step 1
    _equal(again, want)


def test_lenet_training_step_updates_params_as_python_does(tmp_path):
    compiler()
    inputs, loss, params, data = builders.lenet(np.float32)
    grads = gc.grad(loss, params)
    step = gc.compile(inputs, [loss], updates={p: p - 0.05 * g for p, g in zip(params, grads)},
                      threads=1)
    step(*data)  # one step first: the export starts from trained params and call count 1
    exported = gc.export(step, tmp_path / "out", "lenet_step")
    manifest = exported.manifest
    assert manifest["training"] and all(p["written"] for p in manifest["params"])
    want = [step(*data) for _ in range(3)]
    saved = tmp_path / "trained.bin"
    got = run_c(exported, tmp_path, data, runs=3, save=saved)
    for g, w in zip(got, want):
        _equal(g, w)
    trained = gc.export.read_weights(exported.files["manifest"], saved)
    _equal([trained[p.name] for p in params], [p.value for p in params])
    # The library, from ctypes: the same three steps from the exported weights.
    via_ctypes, _ = run_ctypes(exported, tmp_path, data, runs=3)
    for g, w in zip(via_ctypes, want):
        _equal(g, w)


def test_a_winograd_convolution_from_c_is_the_python_call(tmp_path):
    """The Winograd library functions (shapes at run time, one object per function with its
    own copy of the micro-kernel) link into the export as the GEMM's do."""
    from graphc.backends.llvm.lower.conv.paths import forward_path

    compiler()
    rng = np.random.default_rng(0)
    x = gc.input("x", (2, 16, 8, 8))
    w = gc.param("w", (rng.normal(size=(16, 16, 3, 3)) / 12).astype(np.float32))
    y = gc.relu(gc.conv2d(x, w, padding=1))
    assert forward_path(y.inputs[0], x.shape, w.shape) == "winograd"
    f = gc.compile([x], [y], threads=1)
    data = [rng.normal(size=(2, 16, 8, 8)).astype(np.float32)]
    want = f(*data)
    exported = gc.export(f, tmp_path / "out", "wino")
    (got,) = run_c(exported, tmp_path, data)
    _equal(got, want)
