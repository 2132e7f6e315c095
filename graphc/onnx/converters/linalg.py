"""Matrix products: MatMul (NumPy's matmul: batched, broadcast, 1-D operands) and Gemm
(alpha * A' @ B' + beta * C, A' and B' optionally transposed, C broadcast to the result);
Einsum onto gc.einsum."""

from __future__ import annotations

from graphc.onnx.converters.common import unidirectional
from graphc.onnx.registry import converter
from graphc.ops.einsum import einsum
from graphc.ops.linalg import matmul
from graphc.ops.shape import transpose


@converter("MatMul")
def matmul_(ctx):
    return matmul(ctx.input(0), ctx.input(1))


@converter("Gemm")
def gemm(ctx):
    a, b = ctx.input(0), ctx.input(1)
    for name, value in (("A", a), ("B", b)):
        if value.ndim != 2:
            raise ctx.error(f"{name} must be 2-D, got shape {value.shape}")
    if ctx.attr("transA", 0):
        a = transpose(a)
    if ctx.attr("transB", 0):
        b = transpose(b)
    out = matmul(a, b)
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    if alpha != 1.0:
        out = out * alpha
    c = ctx.input(2)
    if c is not None and beta != 0.0:
        unidirectional(ctx, c, out, "C")
        out = out + (c if beta == 1.0 else c * beta)
    return out


@converter("Einsum")
def einsum_(ctx):
    equation = ctx.attr("equation")
    if not equation:
        raise ctx.error("the equation attribute is required")
    return einsum(equation.replace(" ", ""), *ctx.inputs())
