"""Matrix multiplication, batched with broadcast batch dims. Float matmuls run on the
packed GEMM (graphc/backends/llvm/gemm/), reading transposed operands through their
strides; integer matmuls run plain loops: threads split the rows of all batches, each row
accumulating C[i, :] += A[i, k] * B[k, :] over k in order. Either way every element sums
in the same order for any thread count."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm import gemm
from graphc.backends.llvm.codegen.irtypes import const, convert, i64
from graphc.backends.llvm.codegen.kernel import decompose, dot
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.schedule.views import contiguous_strides

# A matmul's work in the serial rule's unit (schedule/serial.py: elements a plain kernel
# touches): eight multiply-adds count as one, so matmuls of fewer than 2**17
# multiply-adds run on one thread.
MULTIPLY_ADDS_PER_ELEMENT = 8


def matmul_work(node, shapes) -> int:
    """The multiply-adds of a (fused) matmul, in the serial rule's unit."""
    a, out = shapes[0], shapes[-1]
    depth = a[-1] if a else 1
    return int(np.prod(out, dtype=np.int64)) * depth // MULTIPLY_ADDS_PER_ELEMENT


def matmul_scratch(node, shapes) -> int:
    *_, out = shapes
    a = shapes[0]
    if not gemm.supported(node.dtype):
        return 0
    batch = int(np.prod(out[:-2], dtype=np.int64))
    return gemm.scratch_bytes(batch, out[-2], out[-1], a[-1], node.dtype)


@lowering("matmul", scratch=matmul_scratch, reads_strided=(0, 1), work=matmul_work)
def emit_matmul(k, node, out, ins, scratch) -> None:
    matmul(k, *ins, out, scratch)


def _operand_strides(x, batch) -> tuple[list[int], int, int]:
    """(batch strides broadcast to `batch`, row stride, column stride) of an operand."""
    strides = list(x.strides or contiguous_strides(x.shape))
    pad = len(batch) - (len(x.shape) - 2)
    batch_strides = [0] * pad + [0 if d == 1 else s for d, s in zip(x.shape[:-2], strides)]
    return batch_strides, strides[-2], strides[-1]


def matmul(k, a, b_, out, scratch, epilogue=None) -> None:
    """out = a @ b_; epilogue(batch index, r0, r1, c0, c1) runs on each finished block of
    rows [r0, r1) and columns [c0, c1) (row i of batch element starts at batch * m * n
    + i * n); with an empty batch index, rows run over all batches."""
    m, n = out.shape[-2:]
    depth = a.shape[-1]
    batch = out.shape[:-2]
    if not gemm.supported(out.dtype):
        _integer_matmul(k, a, b_, out, epilogue)
        return
    a_batch, a_rs, a_cs = _operand_strides(a, batch)
    b_batch, b_rs, b_cs = _operand_strides(b_, batch)
    rows = m
    if batch and not any(b_batch) and _rows_flatten(a_batch, batch, m, a_rs):
        # One shared B: the batches are just more rows of A (B is packed once); the
        # epilogue then gets an empty batch index and rows over all batches.
        rows, batch, a_batch, b_batch = m * int(np.prod(batch, dtype=np.int64)), (), [], []
    readers = [gemm.strided(a.ptr, a.dtype, a_batch, a_rs, a_cs),
               gemm.strided(b_.ptr, b_.dtype, b_batch, b_rs, b_cs)]
    g = gemm.Gemm(batch, rows, n, depth, out.dtype, readers[0], readers[1], out.ptr, n,
                  rows * n, epilogue)
    gemm.emit(k, g, scratch)


def _rows_flatten(batch_strides, batch, m: int, row_stride: int) -> bool:
    """Whether (batch..., row) index one axis of stride row_stride (rows of all batches
    follow each other)."""
    step = m * row_stride
    for d, s in zip(reversed(batch), reversed(batch_strides)):
        if d != 1 and s != step:
            return False
        step *= d
    return True


def _integer_matmul(k, a, b_, out, epilogue) -> None:
    m, n = out.shape[-2:]
    depth = a.shape[-1]
    batch = out.shape[:-2]
    if out.size == 0:
        return
    a_batch, a_rs, a_cs = _operand_strides(a, batch)
    b_batch, b_rs, b_cs = _operand_strides(b_, batch)
    b = k.b
    dtype = out.dtype
    zero = const(dtype, 0)
    start, stop = k.split(int(np.prod(batch, dtype=np.int64)) * m)
    with k.loop(start, stop, "row") as row:
        index = decompose(b, b.udiv(row, i64(m)), list(batch)) if batch else []
        i = b.urem(row, i64(m))
        a_row = dot(b, index, a_batch, b.mul(i, i64(a_rs)))
        b_base = dot(b, index, b_batch)
        c_row = b.mul(row, i64(n))
        with k.loop(0, n, "j") as j:
            k.store(zero, out.ptr, dtype, b.add(c_row, j))
        with k.loop(0, depth, "p") as p:
            a_ip = convert(b, k.load(a.ptr, a.dtype, b.add(a_row, b.mul(p, i64(a_cs)))),
                           a.dtype, dtype)
            b_row = b.add(b_base, b.mul(p, i64(b_rs)))
            with k.loop(0, n, "j") as j:
                at = b.add(c_row, j)
                b_pj = convert(b, k.load(b_.ptr, b_.dtype, b.add(b_row, b.mul(j, i64(b_cs)))),
                               b_.dtype, dtype)
                current = k.load(out.ptr, dtype, at)
                k.store(b.add(current, b.mul(a_ip, b_pj)), out.ptr, dtype, at)
        if epilogue is not None:
            epilogue(index, i, b.add(i, i64(1)), i64(0), i64(n))
