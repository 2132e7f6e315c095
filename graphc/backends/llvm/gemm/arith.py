"""Integer IR helpers the GEMM's modules share."""

from __future__ import annotations

from graphc.backends.llvm.irtypes import i64


def smin(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def smax(b, x, y):
    return b.select(b.icmp_signed(">", x, y), x, y)


def ceil_div(b, x, y):
    return b.sdiv(b.add(x, b.sub(y, i64(1))), y)
