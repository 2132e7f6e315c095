"""The optimizer's fused kernels: "fused" (an elementwise expression), "fused_group"
(several elementwise expressions over one shape, one loop storing each), "fused_reduce" (an
expression reduced over axes) and "fused_matmul" (a matmul whose rows go through an
expression before they are stored). Expressions are emitted from sympy.cse'd bodies."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.backends.llvm.codegen.expr import ExpressionEmitter
from graphc.backends.llvm.codegen.irtypes import I1, const, convert, i64
from graphc.backends.llvm.codegen.kernel import decompose, dot
from graphc.backends.llvm.codegen.nest import broadcast_strides, strided_nest
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.elementwise import (
    emit_expression,
    expression_value,
    loaded,
    operand_env,
    working_dtype,
)
from graphc.backends.llvm.lower.linalg import matmul, matmul_scratch, matmul_work
from graphc.backends.llvm.lower.reduction import Source, reduce
from graphc.backends.llvm.schedule.views import contiguous_strides
from graphc.ops.epilogue import ACC
from graphc.ops.fused_group import group_body, output_symbols
from graphc.ops.fused_reduce import FusedReduce
from graphc.ops.scalar import input_symbols, kernel_body
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


lowering("group_output", kind="projection")(None)


def group_dtypes(node) -> list[np.dtype]:
    """The dtype each output of a fused_group is computed in, as a fused node of it alone
    would: the promotion of the operands its expression uses and its own dtype."""
    exprs, names = node.attrs["exprs"], node.attrs["dtypes"]
    out = []
    for i, expr in enumerate(exprs):
        used = expr.free_symbols
        kinds = [np.dtype(names[i])]
        kinds += [x.dtype for x, s in zip(node.inputs, input_symbols(len(node.inputs)))
                  if s in used]
        kinds += [np.dtype(names[j]) for j, s in enumerate(output_symbols(i)) if s in used]
        kinds = [d for d in kinds if d != dtypes.BOOL]
        dtype = dtypes.promote(*kinds) if kinds else np.dtype("int32")
        out.append(working_dtype(dtype, expr))
    return out


def group_output_dtypes(node) -> list[np.dtype]:
    """The dtypes a fused_group stores, one per output."""
    return [np.dtype(name) for name in node.attrs["dtypes"]]


@lowering("fused_group", inplace=True, outputs=group_output_dtypes)
def emit_fused_group(k, node, outs, ins, scratch) -> None:
    """One loop over the common shape; per element every operand is loaded before any
    output is stored (the planner may store an output over an operand), then each output
    is computed, converted to its dtype and stored, and later outputs read it as a
    register. Each working dtype has its own emitter, sharing the cse temporaries its
    outputs use."""
    assignments, results = group_body(node.attrs["exprs"])
    definitions = dict(assignments)
    symbols = input_symbols(len(ins))
    working = group_dtypes(node)
    reading = loaded(ins)
    shape = outs[0].shape
    strides = [contiguous_strides(shape)] + [broadcast_strides(i.shape, shape) for i in reading]
    b = k.b

    def body_at(offsets):
        raw, at = {}, iter(offsets[1:])
        for symbol, i in zip(symbols, ins):
            if not (i.constant is not None and i.size == 1):  # as `loaded` picks them
                raw[symbol] = (k.load(i.ptr, i.dtype, next(at)), i.dtype)
        emitters: dict[np.dtype, ExpressionEmitter] = {}
        stored = []
        for i, (result, out, dtype) in enumerate(zip(results, outs, working)):
            emitter = emitters.get(dtype)
            if emitter is None:
                env = {s: convert(b, *raw[s], dtype) if s in raw
                       else const(dtype, x.constant.reshape(()).item())
                       for s, x in zip(symbols, ins)}
                emitter = emitters[dtype] = ExpressionEmitter(b, k.mc, dtype, env, definitions)
            for j, symbol in enumerate(output_symbols(i)):
                if symbol not in emitter.memo:
                    emitter.memo[symbol] = convert(b, stored[j], outs[j].dtype, dtype)
            value = emitter.emit(result)
            value = emitter.as_number(value) if value.type == I1 else value
            stored.append(convert(b, value, dtype, out.dtype))
            k.store(stored[-1], out.ptr, out.dtype, offsets[0])

    strided_nest(k, shape, strides, body_at)


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
    reduce(k, node.attrs["kind"], source, set(node.attrs["axes"]), out, node)


@lowering("fused_matmul", scratch=matmul_scratch, reads_strided=(0, 1), work=matmul_work)
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
