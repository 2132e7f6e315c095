"""How threads share a GEMM's items: the same split in the driver and in the caller's
epilogue."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from llvmlite import ir

from graphc.backends.llvm.gemm.arith import ceil_div, smax, smin
from graphc.backends.llvm.gemm.blocking import SCRATCH_SLOTS
from graphc.backends.llvm.irtypes import i64
from graphc.backends.llvm.kernel import Kernel


@dataclass
class Shape:
    items: ir.Value
    m_blocks: ir.Value
    n_blocks: ir.Value
    mc: ir.Value
    nc: ir.Value
    m: ir.Value
    n: ir.Value
    share_b: ir.Value  # i64: whether threads may share packed B panels (Blocking.shares_b)
    width: int  # columns of a B panel (NR)


@dataclass
class Group:
    """One (batch, column block) of a thread's items: its row blocks [lo, hi) and the B
    panels [panel_lo, panel_hi) of the column block it packs. With `shared`, the packed
    panels are read by every thread; `active` threads have a scratch slot."""

    shape: Shape
    index: ir.Value
    flat_batch: ir.Value
    jc: ir.Value
    nc: ir.Value
    lo: ir.Value
    hi: ir.Value
    panel_lo: ir.Value
    panel_hi: ir.Value
    shared: ir.Value
    active: ir.Value

    def rows(self, b) -> tuple[ir.Value, ir.Value]:
        return (b.mul(self.lo, self.shape.mc),
                smin(b, b.mul(self.hi, self.shape.mc), self.shape.m))


@contextlib.contextmanager
def groups(k: Kernel, s: Shape):
    """Loop over the calling thread's items grouped by (batch, column block); the same
    split in the driver and in the caller's epilogue. Threads take contiguous runs of
    items and pack the B panels of their groups, unless that would have several threads
    pack the same panels (a group's row blocks split between them) and the panels are big
    (Blocking.shares_b): then every thread visits every group, packs its share of the
    panels and computes its share of the row blocks against all of them (`shared`: a
    barrier separates packing from computing)."""
    b = k.b
    workers = smin(b, k.nthreads, i64(SCRATCH_SLOTS))
    active = b.icmp_signed("<", k.tid, workers)
    n_groups = b.sdiv(s.items, s.m_blocks)
    shared = b.and_(b.and_(b.icmp_signed("!=", s.share_b, i64(0)),
                           b.icmp_signed(">", workers, i64(1))),
                    b.and_(b.icmp_signed(">=", s.m_blocks, workers),
                           b.icmp_signed("!=", b.srem(n_groups, workers), i64(0))))
    start, stop = _share(b, s.items, k.tid, workers, active)
    row_lo, row_hi = _share(b, s.m_blocks, k.tid, workers, active)
    first = b.select(shared, i64(0), b.sdiv(start, s.m_blocks))
    last = b.select(shared, n_groups, ceil_div(b, stop, s.m_blocks))
    with k.loop(first, last, "group") as group:
        flat_batch = b.sdiv(group, s.n_blocks)
        jc = b.mul(b.srem(group, s.n_blocks), s.nc)
        nc = smin(b, s.nc, b.sub(s.n, jc))
        base_item = b.mul(group, s.m_blocks)
        lo = b.sub(smax(b, start, base_item), base_item)
        hi = b.sub(smin(b, stop, b.add(base_item, s.m_blocks)), base_item)
        panels = ceil_div(b, nc, i64(s.width))
        panel_lo, panel_hi = _share(b, panels, k.tid, workers, active)
        yield Group(s, group, flat_batch, jc, nc, b.select(shared, row_lo, lo),
                    b.select(shared, row_hi, hi), b.select(shared, panel_lo, i64(0)),
                    b.select(shared, panel_hi, panels), shared, active)


def _share(b, total, tid, workers, active) -> tuple[ir.Value, ir.Value]:
    """Thread tid's contiguous share [start, stop) of range(total) among `workers`; empty
    for an inactive thread."""
    chunk = ceil_div(b, total, workers)
    start = b.select(active, smin(b, b.mul(tid, chunk), total), total)
    return start, smin(b, b.add(start, chunk), total)
