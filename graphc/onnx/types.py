"""ONNX element types and graphc dtypes, both ways. What graphc supports is graphc's own
answer (graphc.dtypes.as_dtype), so a dtype graphc gains is importable at once."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from graphc import dtypes


def type_name(elem_type: int) -> str:
    """FLOAT, INT64, ... (the TensorProto name) of an element type number."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"


def numpy_dtype(elem_type: int) -> np.dtype | None:
    """The NumPy dtype of an ONNX element type, None for one NumPy has no dtype for."""
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None


def graphc_dtype(elem_type: int) -> np.dtype | None:
    """The graphc dtype of an ONNX element type, None where graphc has none (float16,
    strings, ...)."""
    dtype = numpy_dtype(elem_type)
    if dtype is None:
        return None
    try:
        return dtypes.as_dtype(dtype)
    except TypeError:
        return None


def onnx_type(dtype) -> int:
    """The ONNX element type of a NumPy dtype."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def supported_names() -> str:
    """The ONNX names of the element types graphc supports, for messages."""
    names = []
    for dtype in dtypes.SUPPORTED:
        names.append(type_name(onnx_type(dtype)))
    return ", ".join(names)
