"""Real models exported from PyTorch (LeNet, a ResNet-18-shaped CNN, a Transformer
encoder, an encoder-decoder CNN of issue 16's layers), imported into graphc and held to
ONNX Runtime on both backends; the imported ResNet-shaped model fine-tuned, its
gradients held to PyTorch's, and the encoder-decoder's gradients too."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

import graphc as gc
from benchmarks.onnx_models import Encoder, EncoderDecoder, LeNet, ResNet18, export, seeded
from tests.backends_available import BACKENDS

# The ResNet-shaped model in the tests is narrower than ResNet-18 (width 8, not 64): the
# structure (BatchNorm, residual adds, strided convs, projection shortcuts, global
# pooling) is the same, and its weights compile and run in CI's time.
MODELS = {
    "lenet": (lambda: LeNet(), (1, 28, 28)),
    "resnet": (lambda: ResNet18(width=8), (3, 32, 32)),
    "encoder": (lambda: Encoder(), (7, 16)),
    "encoder_decoder": (lambda: EncoderDecoder(), (3, 16, 16)),
}


@pytest.fixture(scope="module")
def exported():
    """name -> (torch model, ONNX bytes)."""
    out = {}
    for name, (build, shape) in MODELS.items():
        model = seeded(build())
        out[name] = (model, export(model, torch.zeros(2, *shape)))
    return out


def _inputs(name: str, batch: int, seed: int = 1) -> np.ndarray:
    shape = MODELS[name][1]
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)


def _ort(data: bytes, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(data, options).run(None, {"x": x})[0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_matches_onnx_runtime(exported, name, backend):
    _, data = exported[name]
    model = gc.onnx.load(data)
    assert [str(d) for d in model.inputs[0].shape[:1]] == ["N"]
    run = model.compile(backend=backend)
    # one compiled function, the batch dim bound per call (the LLVM backend compiles each
    # binding: one batch size there keeps the ResNet's native compile to one)
    for batch in (3, 1) if backend == "numpy" else (3,):
        x = _inputs(name, batch)
        expected = _ort(data, x)
        (got,) = run(x)
        assert got.shape == expected.shape and got.dtype == np.float32
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * scale)


def test_params_are_the_initializers(exported):
    torch_model, data = exported["resnet"]
    model = gc.onnx.load(data)
    names = {p.name for p in model.params}
    assert names == {n for n, _ in torch_model.named_parameters()}
    assert {b.name for b in model.buffers} == {
        n for n, _ in torch_model.named_buffers() if not n.endswith("num_batches_tracked")}
    for name, value in torch_model.state_dict().items():
        if name in model.state_dict():
            np.testing.assert_array_equal(model.state_dict()[name], value.numpy())


def test_trainable_false_makes_constants(exported):
    _, data = exported["lenet"]
    model = gc.onnx.load(data, trainable=False)
    assert model.params == [] and model.buffers == []
    x = _inputs("lenet", 2)
    np.testing.assert_allclose(model.compile(backend="numpy")(x)[0], _ort(data, x),
                               atol=1e-5, rtol=1e-4)


def _torch_gradients(torch_model, x, labels):
    torch_model.zero_grad()
    logits = torch_model(torch.from_numpy(x))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels))
    loss.backward()
    return float(loss.detach()), {n: p.grad.numpy().copy()
                                  for n, p in torch_model.named_parameters()}


def test_finetune_resnet_gradients_match_torch_and_loss_falls(exported):
    torch_model, data = exported["resnet"]
    model = gc.onnx.load(data)
    x, labels = _inputs("resnet", 8, seed=2), np.arange(8, dtype=np.int64) % 10
    y = gc.input("labels", ("N",), "int64")
    loss = gc.softmax_cross_entropy(model.outputs[0], y)
    grads = gc.grad(loss, model.params)
    step = gc.compile([model.inputs[0], y], [loss, *grads], backend="numpy")

    expected_loss, expected = _torch_gradients(torch_model, x, labels)
    got_loss, *got = step(x, labels)
    assert got_loss == pytest.approx(expected_loss, rel=1e-5)
    for param, g in zip(model.params, got):
        want = expected[param.name]
        np.testing.assert_allclose(g, want, rtol=0, atol=1e-4 * np.abs(want).max() + 1e-7,
                                   err_msg=param.name)

    train = gc.compile([model.inputs[0], y], loss, backend="numpy",
                       updates={p: p - 0.2 * g for p, g in zip(model.params, grads)})
    losses = [float(train(x, labels)) for _ in range(6)]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.1, losses  # 2.30 -> 2.12 (BatchNorm in eval mode)


def test_encoder_decoder_gradients_match_torch(exported):
    """Gradients through grouped and dilated convs, a reflection pad, a ceil-mode pool, a
    transposed conv, bilinear Resize and CumSum, as imported, against PyTorch's."""
    torch_model, data = exported["encoder_decoder"]
    model = gc.onnx.load(data)
    x = _inputs("encoder_decoder", 2, seed=3)
    weights = np.random.default_rng(4).normal(size=(2, 4, 16, 16)).astype(np.float32)
    r = gc.input("r", (model.inputs[0].shape[0], 4, 16, 16))
    loss = gc.sum(model.outputs[0] * r)
    grads = gc.compile([model.inputs[0], r], gc.grad(loss, model.params),
                       backend="numpy")(x, weights)
    torch_model.zero_grad()
    (torch_model(torch.from_numpy(x)) * torch.from_numpy(weights)).sum().backward()
    expected = {n: p.grad.numpy() for n, p in torch_model.named_parameters()}
    assert {p.name for p in model.params} == set(expected)
    for param, g in zip(model.params, grads):
        want = expected[param.name]
        np.testing.assert_allclose(g, want, rtol=0, atol=1e-4 * np.abs(want).max(),
                                   err_msg=param.name)
