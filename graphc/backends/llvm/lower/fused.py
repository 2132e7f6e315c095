"""The optimizer's fused kernels: "fused" (an elementwise expression), "fused_reduce" (an
expression reduced over axes) and "fused_matmul" (a matmul whose rows go through an
expression before they are stored). Expressions are emitted from sympy.cse'd bodies."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.backends.llvm.irtypes import convert, i64
from graphc.backends.llvm.kernel import decompose, dot
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.elementwise import (
    emit_expression,
    expression_value,
    loaded,
    operand_env,
    working_dtype,
)
from graphc.backends.llvm.lower.linalg import matmul, matmul_scratch
from graphc.backends.llvm.lower.reduction import Source, reduce
from graphc.backends.llvm.nest import broadcast_strides, contiguous_strides
from graphc.ops.epilogue import ACC
from graphc.ops.fused import input_symbols, kernel_body
from graphc.ops.fused_reduce import FusedReduce
from graphc.shapes import evaluate


def fused_dtype(node, inputs) -> np.dtype:
    """One dtype to compute a fused expression in: NumPy's promotion of the operands (bools
    are 0/1 numbers) and the result."""
    kinds = [d for d in (node.dtype, *(i.dtype for i in inputs)) if d != dtypes.BOOL]
    dtype = dtypes.promote(*kinds) if kinds else np.dtype("int32")
    return working_dtype(dtype, node.attrs["expr"])


@lowering("fused", inplace=True)
def emit_fused(k, node, out, ins, scratch) -> None:
    symbols = input_symbols(len(ins))
    emit_expression(k, kernel_body(node.attrs["expr"]), symbols, fused_dtype(node, node.inputs),
                    out, ins)


@lowering("fused_reduce")
def emit_fused_reduce(k, node, out, ins, scratch) -> None:
    space = evaluate(FusedReduce.space(node), k.binding)
    symbols = input_symbols(len(ins))
    body = kernel_body(node.attrs["expr"])
    dtype = fused_dtype(node, node.inputs)
    reading = loaded(ins)

    def value(offsets):
        v = expression_value(k, body, dtype, operand_env(k, symbols, ins, offsets, dtype))
        return convert(k.b, v, dtype, node.dtype)

    strides = [broadcast_strides(i.shape, space) for i in reading] or [[0] * len(space)]
    source = Source(space, strides, value, node.dtype)
    reduce(k, node.attrs["kind"], source, set(node.attrs["axes"]), out)


@lowering("fused_matmul", scratch=matmul_scratch)
def emit_fused_matmul(k, node, out, ins, scratch) -> None:
    a, b_, *extras = ins
    producer = dtypes.promote(a.dtype, b_.dtype)
    if producer != out.dtype:
        raise NotImplementedError(f"fused_matmul: an epilogue from {producer.name} to "
                                  f"{out.dtype.name}")
    symbols = (ACC, *input_symbols(len(extras)))
    body = kernel_body(node.attrs["expr"])
    dtype = fused_dtype(node, node.inputs)
    reading = loaded(extras)
    strides = [broadcast_strides(e.shape, out.shape) for e in reading]
    batch_rank = len(out.shape) - 2
    m, n = out.shape[-2:]
    b = k.b

    def epilogue(index, r0, r1, c0, c1):
        batch_offset = dot(b, list(index), contiguous_strides(out.shape[:-2]))
        with k.loop(r0, r1, "er") as i:
            c_row = b.add(b.mul(batch_offset, i64(m * n)), b.mul(i, i64(n)))
            if len(index) < batch_rank:  # rows over all batches
                where = decompose(b, b.udiv(i, i64(m)), list(out.shape[:-2])) + [
                    b.urem(i, i64(m))]
            else:
                where = list(index) + [i]
            bases = [dot(b, where, s[:batch_rank + 1]) for s in strides]
            with k.loop(c0, c1, "e") as j:
                at = b.add(c_row, j)
                acc = convert(b, k.load(out.ptr, out.dtype, at), out.dtype, dtype)
                offsets = [b.add(base, b.mul(j, i64(s[-1]))) for base, s in zip(bases, strides)]
                env = operand_env(k, symbols[1:], extras, offsets, dtype)
                env[ACC] = acc
                value = expression_value(k, body, dtype, env)
                k.store(convert(b, value, dtype, out.dtype), out.ptr, out.dtype, at)

    matmul(k, a, b_, out, scratch, epilogue)
