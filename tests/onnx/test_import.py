"""gc.onnx.load on hand-made models: symbolic batch dims, shape subgraphs folded at
import, initializers as params and buffers, constants for inputs, and the errors for bad
input (a truncated or foreign file, a too-new opset, missing external data, dims that
contradict the model's declarations, unsupported nodes all listed)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphc as gc
from graphc.onnx.reader import max_opset

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, initializers=(), opset=17, value_info=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers),
                              value_info=list(value_info))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _flatten_by_shape_model():
    """y = reshape(x, [shape(x)[0], -1]) @ W: the Shape -> Gather -> Unsqueeze -> Concat
    subgraph exporters write for x.view(x.size(0), -1)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
             numpy_helper.from_array(np.arange(24, dtype=np.float32).reshape(12, 2), "W")]
    return _model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 3, 4])],
                  [helper.make_tensor_value_info("y", F, ["batch", 2])], inits)


def test_shape_subgraph_folds_with_a_symbolic_batch():
    model = gc.onnx.load(_flatten_by_shape_model())
    (x,), (y,) = model.inputs, model.outputs
    assert [str(d) for d in x.shape] == ["N", "3", "4"] and str(y.shape[0]) == "N"
    assert [p.name for p in model.params] == ["W"]
    ops = {n.op for n in gc.Graph([y])}
    assert ops == {"input", "param", "reshape", "matmul"}  # the shape arithmetic is gone
    run = model.compile(backend="numpy")
    for batch in (1, 4):
        xs = np.random.default_rng(batch).normal(size=(batch, 3, 4)).astype(np.float32)
        np.testing.assert_allclose(run(xs)[0], xs.reshape(batch, 12) @ model.params[0].value,
                                   rtol=1e-6)


def test_batch_dim_none_keeps_the_model_names():
    model = gc.onnx.load(_flatten_by_shape_model(), batch_dim=None)
    assert str(model.inputs[0].shape[0]) == "batch"
    with pytest.raises(ValueError, match="batch_dim"):
        gc.onnx.load(_flatten_by_shape_model(), batch_dim="not an identifier")


def test_constants_fix_an_input_used_as_a_shape():
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    proto = _model(nodes, [helper.make_tensor_value_info("x", F, [2, 6]),
                           helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                   [helper.make_tensor_value_info("y", F, [3, 4])])
    with pytest.raises(gc.onnx.UnsupportedOpsError, match="input 'shape'.*computed at run"):
        gc.onnx.load(proto)
    model = gc.onnx.load(proto, constants={"shape": np.array([3, 4])})
    assert model.input_names == ["x"] and model.outputs[0].shape == (3, 4)
    with pytest.raises(ValueError, match="not graph inputs"):
        gc.onnx.load(proto, constants={"nope": np.array([3, 4])})


def test_unsupported_nodes_are_all_listed():
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("LpPool", ["a"], ["b"], kernel_shape=[1, 1], name="lp"),
             helper.make_node("MaxPool", ["b"], ["c", "ids"], kernel_shape=[1, 1],
                              name="argmax"),
             helper.make_node("Conv", ["c", "w"], ["d"], kernel_shape=[1, 1, 1],
                              name="conv3d"),
             helper.make_node("MyOp", ["d"], ["y"], domain="com.example", name="custom")]
    proto = _model(nodes, [helper.make_tensor_value_info("x", F, [1, 2, 4, 4])],
                   [helper.make_tensor_value_info("y", F, [1, 2, 4, 4])],
                   [numpy_helper.from_array(np.array(0, np.int64), "axis"),
                    numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w")])
    proto.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(gc.onnx.UnsupportedOpsError) as info:
        gc.onnx.load(proto)
    listed = {(n.op_type, n.name, n.opset) for n in info.value.nodes}
    assert listed == {("LpPool", "lp", 17), ("MaxPool", "argmax", 17),
                      ("Conv", "conv3d", 17), ("MyOp", "custom", 1)}
    text = str(info.value)
    assert "4 node(s)" in text and "not planned" in text and "Indices" in text
    assert "3-D convolution" in text
    assert "com.example" in text


def test_params_buffers_and_scalar_initializers():
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"]),
             helper.make_node("Mul", ["bn", "two"], ["y"])]
    c = 3
    inits = [numpy_helper.from_array(np.full(c, v, np.float32), n)
             for n, v in (("s", 1.5), ("b", 0.1), ("m", 0.2), ("v", 0.9))]
    inits.append(numpy_helper.from_array(np.array(2.0, np.float32), "two"))
    proto = _model(nodes, [helper.make_tensor_value_info("x", F, ["N", c, 2, 2])],
                   [helper.make_tensor_value_info("y", F, ["N", c, 2, 2])], inits)
    model = gc.onnx.load(proto)
    assert [p.name for p in model.params] == ["s", "b"]
    assert [b.name for b in model.buffers] == ["m", "v"]
    x = np.random.default_rng(0).normal(size=(2, c, 2, 2)).astype(np.float32)
    expected = 2 * ((x - 0.2) / np.sqrt(0.9 + 1e-5) * 1.5 + 0.1)
    np.testing.assert_allclose(model.compile(backend="numpy")(x)[0], expected, rtol=1e-5)


# ----- bad input ------------------------------------------------------------------------------
def test_missing_empty_truncated_and_foreign_files(tmp_path):
    with pytest.raises(gc.onnx.OnnxError, match="no such file"):
        gc.onnx.load(tmp_path / "absent.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(gc.onnx.OnnxError, match="empty"):
        gc.onnx.load(empty)
    foreign = tmp_path / "script.onnx"
    foreign.write_text("import numpy as np\nprint('hello')\n")
    with pytest.raises(gc.onnx.OnnxError, match="not an ONNX model"):
        gc.onnx.load(foreign)
    data = _flatten_by_shape_model().SerializeToString()
    for cut in (7, len(data) // 3, len(data) // 2, len(data) - 5):
        truncated = tmp_path / f"cut{cut}.onnx"
        truncated.write_bytes(data[:cut])
        with pytest.raises(gc.onnx.OnnxError, match=str(truncated.name)):
            gc.onnx.load(truncated)
    with pytest.raises(TypeError, match="path, bytes or an onnx.ModelProto"):
        gc.onnx.load(42)


def test_opset_newer_than_known():
    proto = _flatten_by_shape_model()
    proto.opset_import[0].version = max_opset() + 1
    with pytest.raises(gc.onnx.OnnxError, match=f"opset {max_opset() + 1}.*newest"):
        gc.onnx.load(proto)


def test_old_opset_is_upgraded():
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    proto = _model(nodes, [helper.make_tensor_value_info("x", F, [3])],
                   [helper.make_tensor_value_info("y", F, [3])], opset=9)
    model = gc.onnx.load(proto)
    assert model.opset == 13
    relu = model.compile(backend="numpy")
    np.testing.assert_array_equal(relu(np.array([-1, 0, 2], np.float32))[0], [0, 0, 2])


def test_external_data_missing_or_short(tmp_path):
    proto = _flatten_by_shape_model()
    onnx.save_model(proto, tmp_path / "m.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    model = gc.onnx.load(tmp_path / "m.onnx")
    np.testing.assert_array_equal(model.params[0].value,
                                  np.arange(24, dtype=np.float32).reshape(12, 2))
    data = (tmp_path / "weights.bin").read_bytes()
    (tmp_path / "weights.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(gc.onnx.OnnxError, match="tensor 'W'.*weights.bin.*truncated"):
        gc.onnx.load(tmp_path / "m.onnx")
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(gc.onnx.OnnxError, match="tensor '.*'.*weights.bin.*does not exist"):
        gc.onnx.load(tmp_path / "m.onnx")


def test_dims_contradicting_the_declared_shapes():
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="proj"),
             helper.make_node("Relu", ["h"], ["y"])]
    inits = [numpy_helper.from_array(np.ones((4, 3), np.float32), "W")]
    declared = [helper.make_tensor_value_info("h", F, ["N", 5])]
    proto = _model(nodes, [helper.make_tensor_value_info("x", F, ["N", 4])],
                   [helper.make_tensor_value_info("y", F, ["N", 3])], inits, value_info=declared)
    with pytest.raises(gc.onnx.OnnxError, match=r"node proj \(MatMul.*tensor 'h'.*\(N, 5\)"):
        gc.onnx.load(proto)
    bad_input = _model(nodes, [helper.make_tensor_value_info("x", F, ["N", 7])],
                       [helper.make_tensor_value_info("y", F, ["N", 3])], inits)
    with pytest.raises(gc.onnx.OnnxError, match=r"node proj \(MatMul.*\(N, 7\)"):
        gc.onnx.load(bad_input)


def test_unsupported_input_dtype_names_the_tensor():
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    proto = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [3])])
    with pytest.raises(gc.onnx.OnnxError, match="graph input 'x'.*FLOAT16"):
        gc.onnx.load(proto)


def test_run_time_shapes_are_checked_at_call():
    run = gc.onnx.load(_flatten_by_shape_model()).compile(backend="numpy")
    with pytest.raises(ValueError, match="input 'x'.*axis 1 should be 3"):
        run(np.zeros((2, 4, 4), np.float32))
