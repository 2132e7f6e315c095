"""A packed, register-blocked GEMM: C[batch] (M x N) = A[batch] (M x K) @ B[batch] (K x N)
for float32 and float64, the engine behind matmul and the three convolution ops.

The GEMM code exists once per module and variant (compute dtype, operand dtypes, kind of
B): a driver function `gc_gemm_*` parameterized at run time by a per-site descriptor (a
constant i64 array: shapes, cache blocks, strides, index maps), so each call site is one
call plus its epilogue, and the module does not grow with the number of matmuls.

A micro-kernel (a function of its own, four depths a trip where the target has FMA) keeps
an MR x NR tile of C in vector registers (SSA phis, explicit `llvm.fma`) while it runs
over packed panels: A in panels of MR rows, B in panels of NR
columns, both k-major, packed from their operands into per-thread scratch. A's element
(r, p) is at r * row stride + cols(p) (packed with vector loads, in transposed blocks where
its columns are contiguous; an A block that only a few column panels use is read in
place); B is either strided (packed with vector loads, in transposed blocks where its
depths are contiguous) or zero-padded image patches (im2col without the copy: masked
contiguous loads where a panel's columns or its depths run along an image row, masked
gathers otherwise). Index maps (`Affine`) are tabulated per cache block with carried digits
instead of divisions. Panels past the matrix edge are packed with zeros, and partial tiles
go through a small scratch tile. Each C element sums its K terms in KC blocks in a fixed
order, so results do not depend on which thread computes a block: the threads split
(batch, column block, row block) items, and the caller runs its epilogue over the same
items after the driver returns.

Modules: blocking (tile, cache blocks, scratch), operands (what a call site describes),
descriptor (the run-time parameters), split (threads' shares), driver (the loops over
blocks), pack_a, pack_b (strided B), patches (image-patch B), micro (micro-kernel and
tiles). Vector and arithmetic helpers come from codegen/ (vector.py, arith.py).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I64, i64
from graphc.backends.llvm.codegen.kernel import Kernel, decompose
from graphc.backends.llvm.gemm.blocking import (
    Blocking,
    mr,
    nr,
    scratch_bytes,
    supported,
)
from graphc.backends.llvm.gemm.descriptor import MAX_BATCH, descriptor, fold_batch
from graphc.backends.llvm.gemm.driver import gemm_driver
from graphc.backends.llvm.gemm.micro import micro_kernel
from graphc.backends.llvm.gemm.operands import Affine, Gemm, Patches, Rows, Strided, strided
from graphc.backends.llvm.gemm.split import Shape, groups

# The names the lowerings use.
__all__ = ["mr", "Affine", "Blocking", "Gemm", "Patches", "Rows", "Strided", "emit", "micro_kernel",
           "nr", "scratch_bytes", "strided", "supported"]


def emit(k: Kernel, g: Gemm, scratch: ir.Value) -> None:
    """The calling thread's share of the GEMM: a call of the module's driver for this
    variant with the site's descriptor, then the epilogue over the blocks it computed."""
    batch = int(np.prod(g.batch, dtype=np.int64))
    if batch * g.m * g.n == 0:
        return
    if len(g.batch) > MAX_BATCH:
        g = fold_batch(g)
    dtype = np.dtype(g.dtype)
    blocks = Blocking.of(batch, g.m, g.n, g.k, dtype)
    desc = k.mc.words("gc_gemm_desc", descriptor(g, blocks))
    gathers = isinstance(g.b, Patches) and g.b.size < 2 ** 31 and g.b.dtype == dtype
    driver = gemm_driver(k.mc, dtype, np.dtype(g.a.dtype), np.dtype(g.b.dtype),
                         "patches" if isinstance(g.b, Patches) else "strided", gathers)
    k.b.call(driver, [desc, g.a.ptr, g.b.ptr, g.c, scratch, k.tid, k.nthreads, k.step])
    if g.epilogue is None:
        return
    m_blocks, n_blocks = -(-g.m // blocks.mc), -(-g.n // blocks.nc)
    shape = Shape(i64(batch * m_blocks * n_blocks), i64(m_blocks), i64(n_blocks),
                  i64(blocks.mc), i64(blocks.nc), i64(g.m), i64(g.n))
    with groups(k, shape) as group:
        index = decompose(k.b, group.flat_batch, list(g.batch)) if g.batch else []
        row0, row1 = group.rows(k.b)
        g.epilogue(index, row0, row1, group.jc, k.b.add(group.jc, group.nc))
