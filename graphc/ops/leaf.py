"""Leaves of the graph: inputs (bound at call time), params (own a value) and constants."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.ops.registry import Op, register_class


@register_class
class Input(Op):
    """A value given at each call; its shape may hold symbolic dims."""

    name = "input"
    differentiable = False

    def infer(self, inputs, attrs):
        return dtypes.as_dtype(attrs["dtype"]), attrs["shape"]

    def numpy(self, node, args, env):
        return env.argument(node)


@register_class
class Param(Op):
    """A trainable value owned by the node; updates write into it in place."""

    name = "param"
    differentiable = False

    def infer(self, inputs, attrs):
        return dtypes.as_dtype(attrs["dtype"]), attrs["shape"]

    def numpy(self, node, args, env):
        return node.value


@register_class
class Constant(Op):
    """A fixed array, hashed by its bytes, so equal constants are one node."""

    name = "constant"
    differentiable = False

    def infer(self, inputs, attrs):
        array: np.ndarray = attrs["value"].array
        return dtypes.as_dtype(array.dtype), array.shape

    def numpy(self, node, args, env):
        return node.attrs["value"].array


@register_class
class DimValue(Op):
    """attrs: dim (an int or sympy expression of symbolic dims), dtype. A scalar holding the
    dim's value under the call's binding, e.g. the count a mean divides by."""

    name = "dim_value"
    differentiable = False

    def infer(self, inputs, attrs):
        return dtypes.as_dtype(attrs["dtype"]), ()

    def numpy(self, node, args, env):
        (value,) = env.shape((node.attrs["dim"],))
        return np.asarray(value, dtype=node.dtype)
