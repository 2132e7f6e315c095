"""How each primitive graphc op is written as ONNX nodes (opset 18 and later): EMITTERS
maps an op name to a function (writer, node, input names) -> output name. graphc
promotes mixed operand dtypes as NumPy does where ONNX wants one type: operands are cast
to the type the op computes in first."""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from graphc import dtypes
from graphc.ir.node import Node
from graphc.onnx.export.writer import GraphWriter

_INT64_MAX, _INT64_MIN = 2**63 - 1, -(2**63)


def _onnx_type(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _as(w: GraphWriter, name: str, have, want) -> str:
    """Tensor `name` of dtype `have` as dtype `want` (a Cast where they differ)."""
    if np.dtype(have) == np.dtype(want):
        return name
    return w.one("Cast", [name], to=_onnx_type(want))


def _operands(w, node: Node, args: list[str], dtype) -> list[str]:
    return [_as(w, a, i.dtype, dtype) for a, i in zip(args, node.inputs)]


def _arith(op_type: str):
    """An op computing in its result's dtype (NumPy promotion of its operands)."""
    def emit(w, node, args):
        return w.one(op_type, _operands(w, node, args, node.dtype))
    return emit


def _float_function(op_type: str):
    """A float-valued function: int operands are computed in float64, as graphc does."""
    def emit(w, node, args):
        return w.one(op_type, _operands(w, node, args, node.dtype))
    return emit


def _compare(op_type: str, negate: bool = False):
    def emit(w, node, args):
        common = dtypes.promote(*(i.dtype for i in node.inputs))
        out = w.one(op_type, _operands(w, node, args, common))
        return w.one("Not", [out]) if negate else out
    return emit


def _scalar(w, value, dtype) -> str:
    return w.constant(np.array(value, dtype=dtype))


def _gelu(w, node, args):
    """x/2 (1 + erf(x / sqrt 2)), the exact GELU, from primitive ops (ONNX's Gelu op is
    opset 20)."""
    (x,) = _operands(w, node, args, node.dtype)
    erf = w.one("Erf", [w.one("Div", [x, _scalar(w, math.sqrt(2.0), node.dtype)])])
    return w.one("Mul", [w.one("Mul", [x, _scalar(w, 0.5, node.dtype)]),
                         w.one("Add", [erf, _scalar(w, 1.0, node.dtype)])])


def _gelu_tanh(w, node, args):
    (x,) = _operands(w, node, args, node.dtype)
    c = lambda v: _scalar(w, v, node.dtype)  # noqa: E731
    cube = w.one("Mul", [w.one("Mul", [x, x]), x])
    inner = w.one("Mul", [w.one("Add", [x, w.one("Mul", [cube, c(0.044715)])]),
                          c(math.sqrt(2 / math.pi))])
    return w.one("Mul", [w.one("Mul", [x, c(0.5)]),
                         w.one("Add", [w.one("Tanh", [inner]), c(1.0)])])


def _silu(w, node, args):
    (x,) = _operands(w, node, args, node.dtype)
    return w.one("Mul", [x, w.one("Sigmoid", [x])])


def _leaky_relu(w, node, args):
    return w.one("LeakyRelu", _operands(w, node, args, node.dtype),
                 alpha=float(node.attrs["slope"]))


def _clip(w, node, args):
    lo, hi = node.attrs.get("lo"), node.attrs.get("hi")
    bounds = ["" if b is None else _scalar(w, b, node.dtype) for b in (lo, hi)]
    while bounds and bounds[-1] == "":
        bounds.pop()
    return w.one("Clip", [*_operands(w, node, args, node.dtype), *bounds])


def _where(w, node, args):
    c, a, b = args
    return w.one("Where", [c, _as(w, a, node.inputs[1].dtype, node.dtype),
                           _as(w, b, node.inputs[2].dtype, node.dtype)])


def _cast(w, node, args):
    return w.one("Cast", args, to=_onnx_type(node.dtype))


def _reduce(op_type: str):
    def emit(w, node, args):
        (x,) = _operands(w, node, args, node.dtype)
        axes = w.constant(np.array(node.attrs["axes"], np.int64))
        return w.one(op_type, [x, axes], keepdims=int(node.attrs["keepdims"]))
    return emit


def _argmax(w, node, args):
    (x,) = args
    axis, keepdims = node.attrs["axis"], node.attrs["keepdims"]
    if axis is not None:
        return w.one("ArgMax", [x], axis=axis, keepdims=int(keepdims))
    flat = w.one("Reshape", [x, w.constant(np.array([-1], np.int64))])
    out = w.one("ArgMax", [flat], axis=0, keepdims=0)
    return w.one("Reshape", [out, w.shape(node.shape)]) if keepdims else out


def _reshape(w, node, args):
    return w.one("Reshape", [args[0], w.shape(node.shape)])


def _transpose(w, node, args):
    return w.one("Transpose", args, perm=list(node.attrs["axes"]))


def _broadcast_to(w, node, args):
    return w.one("Expand", [args[0], w.shape(node.shape)])


def _concat(w, node, args):
    return w.one("Concat", _operands(w, node, args, node.dtype), axis=node.attrs["axis"])


def _slice(w, node, args):
    starts, ends, axes, steps = [], [], [], []
    for axis, (start, stop, step) in enumerate(node.attrs["index"]):
        dim = node.inputs[0].shape[axis]
        if start is None:  # a whole symbolic axis, forwards or backwards
            if step == 1:
                continue
            start, stop = -1, _INT64_MIN
        elif isinstance(dim, int) and (start, stop, step) == (0, dim, 1):
            continue
        elif stop is not None and stop < 0:  # "past index 0", backwards
            stop = _INT64_MIN
        starts.append(start)
        ends.append(stop)
        axes.append(axis)
        steps.append(step)
    if not axes:
        return w.one("Identity", args)
    c = lambda v: w.constant(np.array(v, np.int64))  # noqa: E731
    return w.one("Slice", [args[0], c(starts), c(ends), c(axes), c(steps)])


def _take(w, node, args):
    return w.one("Gather", args, axis=0)


def _one_hot(w, node, args):
    depth = w.constant(np.array(node.attrs["n"], np.int64))
    values = w.constant(np.array([0, 1], dtype=node.dtype))
    return w.one("OneHot", [args[0], depth, values], axis=-1)


def _pads(padding) -> list[int]:
    return list(padding) * 2


def _conv2d(w, node, args):
    return w.one("Conv", args, strides=list(node.attrs["stride"]),
                 pads=_pads(node.attrs["padding"]), kernel_shape=list(node.inputs[1].shape[2:]))


def _conv1d(w, node, args):
    return w.one("Conv", args, strides=[node.attrs["stride"]],
                 pads=[node.attrs["padding"]] * 2, kernel_shape=[node.inputs[1].shape[2]])


def _pool(op_type: str, **extra):
    def emit(w, node, args):
        return w.one(op_type, args, kernel_shape=list(node.attrs["kernel"]),
                     strides=list(node.attrs["stride"]), pads=_pads(node.attrs["padding"]),
                     **extra)
    return emit


def _dim_value(w, node, args):
    scalar = w.one("Reshape", [w.dim(node.attrs["dim"]), w.constant(np.array([], np.int64))])
    return _as(w, scalar, np.int64, node.dtype)


EMITTERS = {
    "add": _arith("Add"), "sub": _arith("Sub"), "mul": _arith("Mul"), "div": _arith("Div"),
    "pow": _arith("Pow"), "maximum": _arith("Max"), "minimum": _arith("Min"),
    "neg": _arith("Neg"), "abs": _arith("Abs"), "sign": _arith("Sign"),
    "relu": _arith("Relu"), "leaky_relu": _leaky_relu, "clip": _clip,
    "exp": _float_function("Exp"), "log": _float_function("Log"),
    "sqrt": _float_function("Sqrt"), "sin": _float_function("Sin"),
    "cos": _float_function("Cos"), "tanh": _float_function("Tanh"),
    "erf": _float_function("Erf"), "sigmoid": _float_function("Sigmoid"),
    "silu": _silu, "gelu": _gelu, "gelu_tanh": _gelu_tanh,
    "equal": _compare("Equal"), "not_equal": _compare("Equal", negate=True),
    "less": _compare("Less"), "less_equal": _compare("LessOrEqual"),
    "greater": _compare("Greater"), "greater_equal": _compare("GreaterOrEqual"),
    "logical_and": _arith("And"), "logical_or": _arith("Or"), "logical_not": _arith("Not"),
    "where": _where, "cast": _cast,
    "sum": _reduce("ReduceSum"), "mean": _reduce("ReduceMean"), "max": _reduce("ReduceMax"),
    "min": _reduce("ReduceMin"), "argmax": _argmax,
    "matmul": _arith("MatMul"),
    "reshape": _reshape, "transpose": _transpose, "broadcast_to": _broadcast_to,
    "concat": _concat, "slice": _slice, "take": _take, "one_hot": _one_hot,
    "conv2d": _conv2d, "conv1d": _conv1d,
    "max_pool2d": _pool("MaxPool"), "avg_pool2d": _pool("AveragePool", count_include_pad=1),
    "dim_value": _dim_value,
}

# Why an op has no ONNX form, for the error that lists them.
NOT_EXPORTED = {
    "random_uniform": "random values (dropout in training): export the inference graph",
}
GRADIENT_OPS = ("conv2d_grad_input", "conv2d_grad_weight", "conv1d_grad_input",
                "conv1d_grad_weight", "max_pool2d_grad", "max_pool2d_gather",
                "avg_pool2d_grad", "take_grad", "slice_grad")
