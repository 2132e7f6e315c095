"""graphc.onnx.backend, ONNX's backend interface: prepare/run on both backends, run_model,
run_node, devices, and inputs fixed per run where graphc needs them at build time."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphc.onnx import backend
from tests.backends_available import BACKENDS

F = TensorProto.FLOAT


def _gemm_model():
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["y"]),
             helper.make_node("ReduceSum", ["y", "axes"], ["total"], keepdims=0)]
    inits = [numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w"),
             numpy_helper.from_array(np.array([0.5, -1, 0, 1], np.float32), "b"),
             numpy_helper.from_array(np.array([1], np.int64), "axes")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, ["n", 3])],
                              [helper.make_tensor_value_info("y", F, ["n", 4]),
                               helper.make_tensor_value_info("total", F, ["n"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _expected(x):
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    y = np.maximum(x @ w.T + np.array([0.5, -1, 0, 1], np.float32), 0)
    return y, y.sum(axis=1)


@pytest.mark.parametrize("name", BACKENDS)
def test_prepare_and_run(name):
    rep = backend.prepare(_gemm_model(), "CPU", backend=name)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    for inputs in ([x], {"x": x}, x):
        y, total = rep.run(inputs)
        for got, want in zip((y, total), _expected(x)):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="missing input"):
        rep.run({"z": x})
    with pytest.raises(ValueError, match="takes 1 input"):
        rep.run([x, x])


def test_numpy_backend_class_and_run_model():
    x = np.ones((2, 3), np.float32)
    (y, _) = backend.NumpyBackend.run_model(_gemm_model(), [x])
    np.testing.assert_allclose(y, _expected(x)[0], rtol=1e-6)
    assert backend.NumpyBackend.prepare(_gemm_model()).function.backend.name == "numpy"
    assert backend.Backend.prepare(_gemm_model()).function.backend.name == "llvm"


def test_run_node():
    node = helper.make_node("LeakyRelu", ["a"], ["b"], alpha=0.1)
    a = np.array([-2.0, 0.0, 3.0], np.float32)
    (b,) = backend.run_node(node, [a])
    np.testing.assert_allclose(b, [-0.2, 0.0, 3.0], rtol=1e-6)


def test_devices():
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA")
    assert not backend.supports_device("TPU")
    with pytest.raises(ValueError, match="CPU only"):
        backend.prepare(_gemm_model(), "CUDA")


def test_inputs_used_as_build_time_values_are_fixed_per_run():
    node = helper.make_node("Tile", ["x", "repeats"], ["y"])
    graph = helper.make_graph(
        [node], "t", [helper.make_tensor_value_info("x", F, [2, 2]),
                      helper.make_tensor_value_info("repeats", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", F, None)])
    rep = backend.prepare(helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", 13)]), backend="numpy")
    assert isinstance(rep, backend.SpecializingRep)
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    for repeats in ([1, 2], [3, 1], [1, 2]):
        (y,) = rep.run([x, np.array(repeats, np.int64)])
        np.testing.assert_array_equal(y, np.tile(x, repeats))
    assert len(rep._compiled) == 2  # one compile per distinct value
    assert not backend.is_compatible(helper.make_model(helper.make_graph(
        [helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[1])], "f",
        [helper.make_tensor_value_info("x", F, [1, 1, 2])],
        [helper.make_tensor_value_info("y", F, [1, 1, 2])]), opset_imports=[
            helper.make_opsetid("", 13)]))


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_small_integer_tensors(dtype, backend_name):
    """int8, uint8 and int16 tensors in and out: ONNX's wrapping arithmetic, C-style Mod,
    bitwise ops and an integer MaxPool keep the type."""
    info = np.iinfo(dtype)
    a = np.array([info.min, -3 if info.min else 3, 7, info.max], dtype)
    b = np.array([1, 2, -3 if info.min else 3, 2], dtype)
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"]),
             helper.make_node("Mod", ["a", "b"], ["mod"], fmod=1),
             helper.make_node("BitwiseXor", ["a", "b"], ["xor"]),
             helper.make_node("Reshape", ["a", "shape"], ["a4"]),
             helper.make_node("MaxPool", ["a4"], ["pool"], kernel_shape=[2], strides=[2])]
    t = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(
        nodes, "ints", [helper.make_tensor_value_info(n, t, [4]) for n in "ab"],
        [helper.make_tensor_value_info(n, t, None) for n in ("sum", "mod", "xor", "pool")],
        [numpy_helper.from_array(np.array([1, 1, 4], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    outputs = backend.prepare(model, backend=backend_name).run([a, b])
    with np.errstate(over="ignore"):
        expected = [a + b, np.fmod(a, b), a ^ b,
                    np.maximum(a[0::2], a[1::2]).reshape(1, 1, 2)]
    for got, want in zip(outputs, expected):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
