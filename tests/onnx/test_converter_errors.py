"""Bad nodes of the ops mapped onto issue 16's builders: each an OnnxError naming the
node, its op and what is wrong (the node tests cover the good ones)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphc as gc

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _load(node, inputs, initializers=()):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, s)
                                            for n, t, s in inputs],
                              [helper.make_tensor_value_info(node.output[0], F, [])],
                              initializer=[numpy_helper.from_array(np.asarray(v), n)
                                           for n, v in initializers])
    return gc.onnx.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]))


CASES = [
    (helper.make_node("Pad", ["x", "p"], ["y"], name="pad"), [("x", F, [2, 3])],
     [("p", np.array([1, 1, 1], np.int64))], r"node pad \(Pad.*pads \(1, 1, 1\) must hold"),
    (helper.make_node("Pad", ["x", "p"], ["y"], mode="mirror", name="pad"),
     [("x", F, [2, 3])], [("p", np.zeros(4, np.int64))], r"unknown mode 'mirror'"),
    (helper.make_node("BitShift", ["a", "b"], ["y"], direction="UP", name="shift"),
     [("a", TensorProto.UINT8, [3]), ("b", TensorProto.UINT8, [3])], [],
     r"node shift \(BitShift.*direction must be 'LEFT' or 'RIGHT'"),
    (helper.make_node("TopK", ["x", "k"], ["v", "i"], name="top"), [("x", F, [2, 3])],
     [("k", np.array([4], np.int64))], r"node top \(TopK.*K=4 is more than axis 1's size 3"),
    (helper.make_node("Trilu", ["x"], ["y"], name="tri"), [("x", F, [3])], [],
     r"node tri \(Trilu.*rank 2 or more, got \(3,\)"),
    (helper.make_node("GatherND", ["x", "i"], ["y"], name="gnd"), [("x", F, [2, 3])],
     [("i", np.zeros((4, 3), np.int64))], r"node gnd \(GatherND.*indices \(4, 3\).*data"),
    (helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], reduction="avg",
                      name="sc"), [("x", F, [2, 3]), ("u", F, [1, 3])],
     [("i", np.zeros((1, 3), np.int64))], r"node sc \(ScatterElements.*reduction 'avg'"),
    (helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up"),
     [("x", F, [1, 2, 4, 4])], [("w", np.zeros((3, 1, 3, 3), np.float32))],
     r"node up \(ConvTranspose.*2 channels, W \(3, 1, 3, 3\) takes 3"),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], mode="area", name="rs"),
     [("x", F, [1, 1, 2, 2])], [("s", np.ones(4, np.float32))], r"unknown mode 'area'"),
    (helper.make_node("Resize", ["x", "", "", "n"], ["y"], name="crop",
                      coordinate_transformation_mode="tf_crop_and_resize"),
     [("x", F, [1, 1, 2, 2])], [("n", np.array([1, 1, 3, 3], np.int64))],
     r"tf_crop_and_resize needs the roi input"),
]


@pytest.mark.parametrize("node, inputs, initializers, message", CASES,
                         ids=[c[0].op_type for c in CASES])
def test_bad_nodes_are_named(node, inputs, initializers, message):
    with pytest.raises(gc.onnx.OnnxError, match=message):
        _load(node, inputs, initializers)


def test_average_pool_dilations_are_listed_as_unsupported():
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2],
                            dilations=[2, 2], name="avg")
    with pytest.raises(gc.onnx.UnsupportedOpsError, match=r"avg_pool2d has none"):
        _load(node, [("x", F, [1, 1, 5, 5])])
