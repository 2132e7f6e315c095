"""Arithmetic helpers the kernels share: signed minimum and maximum of i64 values, a sum
in a dtype's arithmetic, and rounding up to a multiple (at build time)."""

from __future__ import annotations


def smin(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def smax(b, x, y):
    return b.select(b.icmp_signed(">", x, y), x, y)


def add(b, dtype, x, y):
    """x + y in the arithmetic of `dtype` (float or integer)."""
    return b.fadd(x, y) if dtype.kind == "f" else b.add(x, y)


def round_up(x: int, multiple: int) -> int:
    """The least multiple of `multiple` at least x (Python ints)."""
    return -(-x // multiple) * multiple
