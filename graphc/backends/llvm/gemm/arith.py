"""Integer IR helpers the GEMM's modules share."""

from __future__ import annotations


def smin(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def smax(b, x, y):
    return b.select(b.icmp_signed(">", x, y), x, y)
