"""What the weight gradient's direct paths share: the op's shapes, vector helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I1, I32, i64, llvm_type
from graphc.backends.llvm.codegen.vector import masked_load_of, masked_store_of, vector_bytes


@dataclass(frozen=True)
class Shapes:
    """A stride-1 weight gradient's shapes: x (n, c, h, w), g (n, o, ho, wo), the kernel
    (kh, kw) and the padding (ph, pw)."""

    dtype: np.dtype
    n: int
    c: int
    h: int
    w: int
    o: int
    kh: int
    kw: int
    ph: int
    pw: int
    ho: int
    wo: int

    @staticmethod
    def values(dtype, x_shape, g_shape, kernel, padding) -> tuple:
        """The fields above, in order, from the op's shapes."""
        n_, c_, h, wd = x_shape
        _, o_, ho, wo = g_shape
        return (np.dtype(dtype), n_, c_, h, wd, o_, *kernel, *padding, ho, wo)

    @property
    def taps(self) -> int:
        return self.c * self.kh * self.kw


def by_size(b, first, block: int, total: int, emit) -> None:
    """emit(size) for the block starting at `first`: full, or the short last one."""
    if total % block == 0:
        emit(block)
        return
    with b.if_else(b.icmp_signed("<=", b.add(first, i64(block)), i64(total))) as (full, last):
        with full:
            emit(block)
        with last:
            emit(total % block)


class Vectors:
    """Widest vectors of a dtype, with their masked load and store."""

    def __init__(self, k, dtype: np.dtype):
        self.lanes = vector_bytes() // dtype.itemsize
        self.t = llvm_type(dtype)
        self.vec, self.mask = ir.VectorType(self.t, self.lanes), ir.VectorType(I1, self.lanes)
        self.load = masked_load_of(k.mc, self.vec)
        self.store = masked_store_of(k.mc, self.vec)
        self.align = ir.Constant(I32, dtype.itemsize)
        self.zero = ir.Constant(self.vec, None)

    def lanes_below(self, count: int) -> ir.Constant:
        return ir.Constant(self.mask, [lane < count for lane in range(self.lanes)])

