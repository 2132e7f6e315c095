"""How threads share a GEMM's items: the same split in the driver and in the caller's
epilogue."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from llvmlite import ir

from graphc.backends.llvm.codegen.arith import smax, smin
from graphc.backends.llvm.codegen.irtypes import i64
from graphc.backends.llvm.codegen.kernel import Kernel
from graphc.backends.llvm.gemm.blocking import SCRATCH_SLOTS


@dataclass
class Shape:
    items: ir.Value
    m_blocks: ir.Value
    n_blocks: ir.Value
    mc: ir.Value
    nc: ir.Value
    m: ir.Value
    n: ir.Value


@dataclass
class Group:
    """One (batch, column block) of a thread's items, with its row blocks [lo, hi)."""

    shape: Shape
    flat_batch: ir.Value
    jc: ir.Value
    nc: ir.Value
    lo: ir.Value
    hi: ir.Value

    def rows(self, b) -> tuple[ir.Value, ir.Value]:
        return (b.mul(self.lo, self.shape.mc),
                smin(b, b.mul(self.hi, self.shape.mc), self.shape.m))


@contextlib.contextmanager
def groups(k: Kernel, s: Shape):
    """Loop over the calling thread's items grouped by (batch, column block); the same
    split in the driver and in the caller's epilogue. Each thread packs the B panels of
    its groups, even where two threads split a group's rows: sharing the packed panels
    (each thread packing a share, a barrier, each reading all; d9dec7f) measured no
    faster at 2 threads, 1024^3 included."""
    b = k.b
    workers = smin(b, k.nthreads, i64(SCRATCH_SLOTS))
    chunk = b.sdiv(b.add(s.items, b.sub(workers, i64(1))), workers)
    active = b.icmp_signed("<", k.tid, workers)
    start = b.select(active, smin(b, b.mul(k.tid, chunk), s.items), s.items)
    stop = smin(b, b.add(start, chunk), s.items)
    first = b.sdiv(start, s.m_blocks)
    last = b.sdiv(b.add(stop, b.sub(s.m_blocks, i64(1))), s.m_blocks)
    with k.loop(first, last, "group") as group:
        flat_batch = b.sdiv(group, s.n_blocks)
        jc = b.mul(b.srem(group, s.n_blocks), s.nc)
        nc = smin(b, s.nc, b.sub(s.n, jc))
        base_item = b.mul(group, s.m_blocks)
        lo = b.sub(smax(b, start, base_item), base_item)
        hi = b.sub(smin(b, stop, b.add(base_item, s.m_blocks)), base_item)
        yield Group(s, flat_batch, jc, nc, lo, hi)
