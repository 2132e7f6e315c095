"""Matrix multiplication: 2-D and batched, batch dims broadcast as numpy.matmul does."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ops.registry import Op, register_class
from graphc.shapes import broadcast, dims_equal, shape_str


@register_class
class MatMul(Op):
    """(..., M, K) @ (..., K, N) -> (..., M, N). 1-D operands are reshaped by gc.matmul."""

    name = "matmul"

    def infer(self, inputs, attrs):
        a, b = inputs
        if a.ndim < 2 or b.ndim < 2:
            raise build_error(self.name, f"operands must be at least 2-D, got "
                              f"{shape_str(a.shape)} and {shape_str(b.shape)}")
        if not dims_equal(a.shape[-1], b.shape[-2]):
            raise build_error(self.name, f"inner dims differ: {shape_str(a.shape)} @ "
                              f"{shape_str(b.shape)} ({a.shape[-1]} != {b.shape[-2]})")
        try:
            batch = broadcast(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise build_error(self.name, f"batch dims of {shape_str(a.shape)} and "
                              f"{shape_str(b.shape)} do not broadcast") from None
        kinds = (a.dtype, b.dtype)
        if dtypes.BOOL in kinds:
            raise build_error(self.name, f"does not take bool operands (got {a.dtype.name} and "
                              f"{b.dtype.name})", dtype=True)
        return dtypes.promote(*kinds), batch + (a.shape[-2], b.shape[-1])

    def numpy(self, node, args, env):
        a, b = (x.astype(node.dtype, copy=False) for x in args)
        return np.matmul(a, b)

    def grad(self, node, out_grad):
        from graphc.autodiff.linalg import matmul_grad
        return matmul_grad(node, out_grad)
