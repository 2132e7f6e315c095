"""Arithmetic helpers the kernels share: signed minimum and maximum of i64 values, a sum
in a dtype's arithmetic, rounding up to a multiple (at build time), and the rounding
divisions, remainders and shifts of graphc/ops/division.py and bitwise.py with NumPy's
results for every input: no division instruction ever sees a zero divisor or the
minimum int over -1 (x86's idiv would trap), no shift an out-of-range count (poison)."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import is_unsigned


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


# ----- integer division ---------------------------------------------------------------------
def _int(value: ir.Value, number: int) -> ir.Constant:
    return ir.Constant(value.type, number)


def int_divmod(b: ir.IRBuilder, dtype: np.dtype, x: ir.Value, y: ir.Value,
               floor: bool) -> tuple[ir.Value, ir.Value]:
    """(quotient, remainder) of ints of `dtype`, rounded toward -inf (`floor`, Python's
    // and %) or toward 0 (C's / and %). y = 0 gives (0, 0), as NumPy; the minimum int over
    -1 gives (the minimum int, 0), NumPy's wrapped quotient."""
    zero, one = _int(x, 0), _int(x, 1)
    by_zero = b.icmp_unsigned("==", y, zero)
    if is_unsigned(dtype):
        safe = b.select(by_zero, one, y)
        return (b.select(by_zero, zero, b.udiv(x, safe)),
                b.select(by_zero, zero, b.urem(x, safe)))
    by_minus_one = b.icmp_signed("==", y, _int(x, -1))
    special = b.or_(by_zero, by_minus_one)
    safe = b.select(special, one, y)
    quotient, remainder = b.sdiv(x, safe), b.srem(x, safe)
    if floor:  # a remainder whose sign differs from y's: one step further down
        adjust = b.and_(b.icmp_signed("!=", remainder, zero),
                        b.icmp_signed("<", b.xor(remainder, y), zero))
        quotient = b.select(adjust, b.sub(quotient, one), quotient)
        remainder = b.select(adjust, b.add(remainder, y), remainder)
    quotient = b.select(by_minus_one, b.sub(zero, x), b.select(by_zero, zero, quotient))
    return quotient, b.select(special, zero, remainder)


# ----- float division, NumPy's npy_divmod -----------------------------------------------------
def float_floor_divmod(emitter, x: ir.Value, y: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(x // y, x % y) of floats exactly as NumPy's npy_divmod (and PyTorch's div_floor):
    mod = fmod(x, y) moved to y's sign, div = (x - mod) / y floored and rounded to the
    nearest integer; y = 0 gives x / y (inf or NaN) and fmod's NaN."""
    b = emitter.b
    number = emitter.number
    zero = number(0)
    mod = b.frem(x, y)
    div = b.fdiv(b.fsub(x, mod), y)
    flip = b.and_(b.fcmp_unordered("!=", mod, zero),
                  b.xor(b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", mod, zero)))
    mod = b.select(flip, b.fadd(mod, y), mod)
    div = b.select(flip, b.fsub(div, number(1)), div)
    mod = b.select(b.fcmp_ordered("==", mod, zero), emitter.intrinsic("copysign", zero, y), mod)
    floored = emitter.intrinsic("floor", div)
    floored = b.select(b.fcmp_ordered(">", b.fsub(div, floored), number(0.5)),
                       b.fadd(floored, number(1)), floored)
    quotient = b.select(b.fcmp_ordered("==", div, zero),
                        emitter.intrinsic("copysign", zero, b.fdiv(x, y)), floored)
    by_zero = b.fcmp_ordered("==", y, zero)
    return b.select(by_zero, b.fdiv(x, y), quotient), b.select(by_zero, b.frem(x, y), mod)


# ----- shifts -------------------------------------------------------------------------------
def shift(b: ir.IRBuilder, dtype: np.dtype, x: ir.Value, count: ir.Value,
          left: bool) -> ir.Value:
    """x << count or x >> count (arithmetic for signed dtypes), NumPy's and PyTorch's
    result for a count that is negative or the width or more: 0, or the sign fill."""
    width = x.type.width
    inside = b.icmp_unsigned("<", count, _int(x, width))
    if left:
        return b.select(inside, b.shl(x, count), _int(x, 0))
    if is_unsigned(dtype):
        return b.select(inside, b.lshr(x, count), _int(x, 0))
    return b.select(inside, b.ashr(x, count), b.ashr(x, _int(x, width - 1)))

