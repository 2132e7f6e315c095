"""LLVM types of graphc dtypes, constants, and conversions between them (NumPy's casts)."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F32 = ir.FloatType()
F64 = ir.DoubleType()
PTR = ir.PointerType()
VOID = ir.VoidType()

_TYPES = {"bool": I8, "uint8": I8, "int8": I8, "int16": I16, "int32": I32, "int64": I64,
          "float32": F32, "float64": F64}


# By dtype object too: np.dtype(...).name costs microseconds, and kernels ask per value.
_BY_DTYPE = {np.dtype(name): typ for name, typ in _TYPES.items()}


def llvm_type(dtype: np.dtype) -> ir.Type:
    """The in-memory LLVM type of a dtype (bool is one byte, 0 or 1, as in NumPy)."""
    typ = _BY_DTYPE.get(dtype) if isinstance(dtype, np.dtype) else None
    return typ if typ is not None else _TYPES[np.dtype(dtype).name]


def is_float(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def is_bool(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind == "b"


def is_unsigned(dtype: np.dtype) -> bool:
    """Unsigned in LLVM's arithmetic: uint8, and bool (a byte 0 or 1)."""
    return np.dtype(dtype).kind in "ub"


def icmp(b: ir.IRBuilder, dtype: np.dtype, op: str, x: ir.Value, y: ir.Value) -> ir.Value:
    """x op y for ints of `dtype`: the unsigned comparison for uint8 and bool."""
    if is_unsigned(dtype):
        return b.icmp_unsigned(op, x, y)
    return b.icmp_signed(op, x, y)


def const(dtype: np.dtype, value) -> ir.Constant:
    """A constant of a dtype; floats keep their exact value (float32 rounds once)."""
    dtype = np.dtype(dtype)
    if is_float(dtype):
        return ir.Constant(llvm_type(dtype), float(dtype.type(value)))
    return ir.Constant(llvm_type(dtype), int(value))


def i64(value: int) -> ir.Constant:
    return ir.Constant(I64, int(value))


def float_to_int(b: ir.IRBuilder, value: ir.Value, target: ir.IntType) -> ir.Value:
    """A float truncated toward zero to an i32 or i64, NumPy's result on x86 (the minimum
    int for NaN and for values out of range) rather than LLVM's poison."""
    bits = target.width
    low, high = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1)
    inside = b.and_(b.fcmp_ordered(">=", value, ir.Constant(value.type, low)),
                    b.fcmp_ordered("<", value, ir.Constant(value.type, high)))
    return b.select(inside, b.fptosi(value, target), ir.Constant(target, -(1 << (bits - 1))))


def convert(b: ir.IRBuilder, value: ir.Value, src: np.dtype, dst: np.dtype) -> ir.Value:
    """value of dtype src as dtype dst, as NumPy's astype (floats to ints truncate)."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst:
        return value
    if is_bool(dst):
        if is_float(src):
            flag = b.fcmp_unordered("!=", value, ir.Constant(value.type, 0.0))
        else:
            flag = b.icmp_unsigned("!=", value, ir.Constant(value.type, 0))
        return b.zext(flag, I8)
    target = llvm_type(dst)
    if is_float(src):
        if is_float(dst):
            return b.fpext(value, target) if dst.itemsize > src.itemsize \
                else b.fptrunc(value, target)
        if dst.itemsize < 4:  # through int32 and wrapped, as NumPy: 300.7 as uint8 is 44
            return b.trunc(float_to_int(b, value, I32), target)
        return float_to_int(b, value, target)
    if is_float(dst):
        return b.uitofp(value, target) if is_unsigned(src) else b.sitofp(value, target)
    if dst.itemsize > src.itemsize:
        return b.zext(value, target) if is_unsigned(src) else b.sext(value, target)
    if dst.itemsize == src.itemsize:
        return value  # int8 <-> uint8: the same bits
    return b.trunc(value, target)
