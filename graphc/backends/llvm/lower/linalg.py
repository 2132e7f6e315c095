"""Matrix multiplication, batched with broadcast batch dims: threads split the rows of
all batches; each row accumulates C[i, :] += A[i, k] * B[k, :] over k in order (the
inner loop over columns vectorizes), so every element sums in the same order for any
thread count."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.irtypes import const, convert, i64
from graphc.backends.llvm.kernel import decompose, dot
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.nest import broadcast_strides


@lowering("matmul")
def emit_matmul(k, node, out, ins, scratch) -> None:
    matmul(k, *ins, out)


def matmul(k, a, b_, out, epilogue=None) -> None:
    """out = a @ b_; epilogue(batch index, i, offset of row i) runs after each row."""
    m, n = out.shape[-2:]
    depth = a.shape[-1]
    batch = out.shape[:-2]
    if out.size == 0:
        return
    # Batch strides in whole matrices, 0 where an operand is broadcast.
    a_batch = broadcast_strides(a.shape[:-2], batch)
    b_batch = broadcast_strides(b_.shape[:-2], batch)
    b = k.b
    dtype = out.dtype
    zero = const(dtype, 0)
    floating = dtype.kind == "f"
    start, stop = k.split(int(np.prod(batch, dtype=np.int64)) * m)
    with k.loop(start, stop, "row") as row:
        index = decompose(b, b.udiv(row, i64(m)), list(batch)) if batch else []
        i = b.urem(row, i64(m))
        a_row = dot(b, index, [s * m * depth for s in a_batch], b.mul(i, i64(depth)))
        b_base = dot(b, index, [s * depth * n for s in b_batch])
        c_row = b.mul(row, i64(n))
        with k.loop(0, n, "j") as j:
            k.store(zero, out.ptr, dtype, b.add(c_row, j))
        with k.loop(0, depth, "p") as p:
            a_ip = convert(b, k.load(a.ptr, a.dtype, b.add(a_row, p)), a.dtype, dtype)
            b_row = b.add(b_base, b.mul(p, i64(n)))
            with k.loop(0, n, "j") as j:
                at = b.add(c_row, j)
                b_pj = convert(b, k.load(b_.ptr, b_.dtype, b.add(b_row, j)), b_.dtype, dtype)
                product = b.fmul(a_ip, b_pj) if floating else b.mul(a_ip, b_pj)
                current = k.load(out.ptr, dtype, at)
                total = b.fadd(current, product) if floating else b.add(current, product)
                k.store(total, out.ptr, dtype, at)
        if epilogue is not None:
            epilogue(index, i, c_row)
