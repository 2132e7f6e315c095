"""The converter registry: every ONNX op issue 17 names is mapped or waits for a named
graphc op; the waiting list and the mapped ops never overlap."""

import graphc.onnx
from graphc.onnx.registry import CONVERTERS, WAITING, find, why_unmapped

ISSUE_OPS = """Add Sub Mul Div Neg Pow Sqrt Exp Log Abs Sign Relu LeakyRelu PRelu Elu Selu
Sigmoid HardSigmoid HardSwish Tanh Erf Gelu Softplus Softsign Mish Min Max Where Clip Equal
Less Greater Not And Or Cast Identity Dropout MatMul Gemm Conv ConvTranspose MaxPool
AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization InstanceNormalization
LayerNormalization Softmax LogSoftmax ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd
ReduceL2 ArgMax ArgMin Reshape Flatten Transpose Squeeze Unsqueeze Concat Split Slice Gather
Expand Pad Shape ConstantOfShape Constant Range Tile Resize Einsum CumSum""".split()


def test_every_op_of_the_issue_is_mapped_or_waits():
    mapped = set(graphc.onnx.mapped_ops())  # loads every converter module
    missing = [op for op in ISSUE_OPS if op not in mapped and op not in WAITING]
    assert missing == []


def test_waiting_and_mapped_never_overlap():
    assert graphc.onnx.mapped_ops() == sorted(CONVERTERS)
    assert set(WAITING) & set(CONVERTERS) == set()


def test_lookup_and_reasons():
    assert find("", "Relu") is CONVERTERS["Relu"]
    assert find("ai.onnx", "Relu") is CONVERTERS["Relu"]
    assert find("com.microsoft", "Relu") is None
    assert "not planned" in why_unmapped("", "LpPool")
    assert "domain" in why_unmapped("ai.onnx.ml", "TreeEnsemble")
    assert "no mapping" in why_unmapped("", "NoSuchOp")
