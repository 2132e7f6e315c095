"""gc.onnx.save: graphs and compiled functions written as ONNX, checked by ONNX's checker
(save runs it) and run by ONNX Runtime with the results graphc computes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import graphc as gc
from benchmarks.onnx_models import LeNet, export, seeded
from tests.backends_available import BACKENDS


def _run_ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString()).run(None, feeds)


def _rng():
    return np.random.default_rng(0)


def _vec(*shape, dtype=np.float32):
    return _rng().normal(size=shape).astype(dtype)


# Graphs covering every op the exporter writes: name -> build() -> (inputs, outputs, feeds).
def _elementwise():
    x, y = gc.input("x", ("N", 5)), gc.input("y", (5,))
    out = gc.where(gc.greater(x, y), gc.exp(x) / (1.0 + gc.abs(y)), gc.sqrt(gc.abs(x)) ** 1.5)
    out = gc.clip(gc.tanh(out) - gc.sigmoid(x) * gc.sign(y), -0.5, 0.75) + gc.leaky_relu(x, 0.2)
    out = out + gc.gelu(x) + gc.gelu(y, approximate="tanh") + gc.silu(x) + gc.erf(x) \
        + gc.sin(x) * gc.cos(y) + gc.maximum(x, y) - gc.minimum(x, 0.1) + gc.log(1.0 + x * x)
    flags = gc.logical_or(gc.logical_and(gc.less(x, y), gc.less_equal(x, 0.5)),
                          gc.logical_not(gc.greater_equal(x, -0.5)))
    other = gc.cast(gc.not_equal(x, y), "float32") + gc.cast(gc.equal(x, x), "float32")
    return [x, y], [out, flags, other, gc.relu(-x)], {"x": _vec(3, 5), "y": _vec(5)}


def _reductions():
    x = gc.input("x", ("N", 4, 6))
    outs = [gc.sum(x, axis=1), gc.mean(x, axis=(1, 2), keepdims=True), gc.max(x, axis=-1),
            gc.min(x, axis=0), gc.argmax(x, axis=2), gc.argmax(x, keepdims=True),
            gc.softmax(x, axis=1), gc.log_softmax(x), gc.layer_norm(x)]
    return [x], outs, {"x": _vec(2, 4, 6)}


def _shapes():
    x, ids = gc.input("x", ("N", 4, 6)), gc.input("ids", (3,), "int64")
    table = gc.param("table", _vec(10, 4))
    outs = [gc.relu(gc.reshape(x, (-1, 12, 2)) * 2.0 + 1.0), gc.transpose(x, (2, 0, 1)),
            x[:, 1:3, ::-2],
            x[::-1, ..., 2], gc.concat([x, x * 2.0], axis=1),
            gc.broadcast_to(gc.reshape(x[:, 0, :], (1, -1, 6)), (3, x.shape[0], 6)),
            gc.embedding(ids, table), gc.one_hot(ids, 10),
            gc.cast(x, "int32") + gc.constant(np.int32(2)), gc.mean(x, axis=0)]
    return [x, ids], outs, {"x": _vec(2, 4, 6), "ids": np.array([3, 0, 9])}


def _convolutions():
    x, s = gc.input("x", ("N", 2, 9, 9)), gc.input("s", ("N", 3, 11))
    w, v = gc.param("w", _vec(4, 2, 3, 3)), gc.param("v", _vec(2, 3, 3))
    outs = [gc.max_pool2d(gc.relu(gc.conv2d(x, w, padding=1, stride=2)), 2),
            gc.avg_pool2d(x, 3, stride=2, padding=1), gc.conv1d(s, v, stride=2, padding=1),
            gc.matmul(gc.reshape(x, (-1, 81)), gc.constant(_vec(81, 3)))]
    return [x, s], outs, {"x": _vec(2, 2, 9, 9), "s": _vec(2, 3, 11)}


GRAPHS = {"elementwise": _elementwise, "reductions": _reductions, "shapes": _shapes,
          "convolutions": _convolutions}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_graph_runs_in_onnx_runtime_as_in_graphc(name):
    inputs, outputs, feeds = GRAPHS[name]()
    model = gc.onnx.save(outputs, None, inputs=inputs)
    expected = gc.compile(inputs, outputs, backend="numpy")(*feeds.values())
    for got, want in zip(_run_ort(model, feeds), expected):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_compiled_function_writes_its_fused_kernels_as_primitives(name, backend):
    inputs, outputs, feeds = GRAPHS[name]()
    compiled = gc.compile(inputs, outputs, backend=backend)
    assert any(get.fused for get in (gc.ops.get_op(n.op) for n in compiled.graph))
    model = gc.onnx.save(compiled, None)
    for got, want in zip(_run_ort(model, feeds), compiled(*feeds.values())):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_imported_model_round_trips(tmp_path):
    torch_model = seeded(LeNet())
    data = export(torch_model, torch.zeros(2, 1, 28, 28))
    imported = gc.onnx.load(data)
    path = tmp_path / "lenet.onnx"
    gc.onnx.save(imported.compile(backend="numpy"), path, output_names=["logits"])
    saved = onnx.load(path)
    assert {i.name for i in saved.graph.initializer} >= {p.name for p in imported.params}
    assert [d.dim_param for d in saved.graph.input[0].type.tensor_type.shape.dim][:1] == ["N"]
    x = _vec(5, 1, 28, 28)
    (got,) = ort.InferenceSession(str(path)).run(["logits"], {"x": x})
    np.testing.assert_allclose(got, torch_model(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    again = gc.onnx.load(path).compile(backend="numpy")(x)[0]
    np.testing.assert_allclose(again, got, rtol=1e-5, atol=1e-6)


def test_refuses_gradient_and_random_ops_listing_them():
    x = gc.input("x", (4, 3))
    w = gc.param("w", _vec(3, 2))
    loss = gc.mean(gc.dropout(x @ w, 0.5, seed=1) ** 2)
    (g,) = gc.grad(gc.mean(gc.max_pool2d(gc.reshape(x, (1, 1, 4, 3)), 2) * 1.0), [x])
    with pytest.raises(gc.onnx.OnnxError, match="random_uniform") as info:
        gc.onnx.save([loss, g], None, inputs=[x])
    assert "max_pool2d_grad" in str(info.value) and "export the forward" in str(info.value)


def test_bad_arguments():
    x, y = gc.input("x", (2,)), gc.input("y", (2,))
    with pytest.raises(ValueError, match=r"need input\(s\) \['y'\]"):
        gc.onnx.save(x + y, None, inputs=[x])
    with pytest.raises(TypeError, match="gc.input"):
        gc.onnx.save(x + y, None, inputs=[x, gc.param("p", np.ones(2))])
    with pytest.raises(ValueError, match="opset"):
        gc.onnx.save(x + y, None, opset=12)
    with pytest.raises(ValueError, match="distinct output names"):
        gc.onnx.save([x, y], None, output_names=["a", "a"])
    with pytest.raises(TypeError, match="graph value"):
        gc.onnx.save("x", None)
