"""`graphc onnx info`, `graphc onnx run` and `graphc viz MODEL.onnx`."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphc.cli import main

F = TensorProto.FLOAT


@pytest.fixture()
def model_path(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"]),
             helper.make_node("Add", ["y", "b"], ["z"])]
    inits = [numpy_helper.from_array(np.eye(3, dtype=np.float32) * 2, "W")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", F, ["n", 3]),
                                              helper.make_tensor_value_info("b", F, [3])],
                              [helper.make_tensor_value_info("y", F, ["n", 3]),
                               helper.make_tensor_value_info("z", F, ["n", 3])], inits)
    path = tmp_path / "tiny.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_info(model_path, capsys):
    assert main(["onnx", "info", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "ai.onnx 17" in out and "x: float (n, 3)" in out
    assert "MatMul" in out and "maps to graphc" in out
    assert "import: ok: 2 input(s), 1 params (9 values)" in out


def test_info_lists_what_does_not_map(tmp_path, capsys):
    graph = helper.make_graph([helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[1],
                                                name="lp")],
                              "g", [helper.make_tensor_value_info("x", F, [1, 1, 4])],
                              [helper.make_tensor_value_info("y", F, [1, 1, 4])])
    path = tmp_path / "lp.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert main(["onnx", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "not planned" in out and "LpPool (node lp, opset 17)" in out


def test_run_prints_and_saves(model_path, tmp_path, capsys):
    x = np.array([[1.0, -2.0, 3.0]], np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "b.npy", np.ones(3, np.float32))
    assert main(["onnx", "run", str(model_path), "-i", str(tmp_path / "x.npy"),
                 "-i", f"b={tmp_path / 'b.npy'}", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "y: float32 (1, 3)" in out and "[[2. 0. 6.]]" in out
    saved = tmp_path / "out.npz"
    assert main(["onnx", "run", str(model_path), "-i", f"b={tmp_path / 'b.npy'}",
                 "-i", f"x={tmp_path / 'x.npy'}", "-o", str(saved)]) == 0
    with np.load(saved) as outputs:
        np.testing.assert_array_equal(outputs["z"], [[3.0, 1.0, 7.0]])


def test_run_errors(model_path, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 4), np.float32))
    cases = [(["-i", str(tmp_path / "x.npy")], r"no value for input\(s\) b"),
             (["-i", f"q={tmp_path / 'x.npy'}"], "no input 'q'"),
             (["-i", str(tmp_path / "x.npy"), "-i", str(tmp_path / "missing.npy")],
              "cannot read"),
             (["-i", str(tmp_path / "x.npy"), "-i", f"b={tmp_path / 'x.npy'}"],
              "input 'x'.*axis 1 should be 3")]
    for extra, message in cases:
        assert main(["onnx", "run", str(model_path), *extra, "--backend", "numpy"]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err), err
    assert main(["onnx", "run", str(tmp_path / "nope.onnx")]) == 2
    assert "no such model" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    assert main(["onnx", "info", str(bad)]) == 2
    assert "not an ONNX model" in capsys.readouterr().err


def test_viz_draws_the_imported_graph(model_path, tmp_path, capsys):
    out = tmp_path / "drawing.dot"
    assert main(["viz", str(model_path), "--stage", "forward", "-o", str(out)]) == 0
    text = out.read_text()
    assert "matmul" in text and "relu" in text and "tiny" in text
