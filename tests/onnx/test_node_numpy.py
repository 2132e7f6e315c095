"""ONNX's node tests on graphc's NumPy backend: every test of every op graphc maps (the
exclusions, each with its reason, in tests/onnx/node_suite.py)."""

from graphc.onnx.backend import NumpyBackend
from tests.onnx.node_suite import node_test_class, selection

OnnxNodeNumpyTest = node_test_class(NumpyBackend, "OnnxNodeNumpyTest", selection(), __name__)
