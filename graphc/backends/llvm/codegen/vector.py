"""The vector width the register blocking assumes, and the vector helpers kernels share.

VECTOR_BYTES is the width of one vector register as the hand-blocked kernels see it: 64
bytes, one AVX-512 zmm register (16 float32 or 8 float64 lanes). The GEMM's register
tile, the direct and Winograd convolutions, the weight gradient's register blocks and
2x2 pooling count their lanes and align their scratch by it; on a host with narrower
registers LLVM splits each such vector into several (the same results, slower).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I1, I32, PTR, VOID

VECTOR_BYTES = 64


def lanes(dtype: np.dtype) -> int:
    """Elements of `dtype` in one vector of VECTOR_BYTES."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def type_suffix(dtype: np.dtype) -> str:
    """The element part of a float vector intrinsic's name: "f32" or "f64"."""
    return "f32" if np.dtype(dtype).itemsize == 4 else "f64"


def _suffix(vec: ir.VectorType) -> str:
    return "f32" if str(vec.element) == "float" else "f64"


def splat(b: ir.IRBuilder, value: ir.Value, typ: ir.VectorType) -> ir.Value:
    """A vector of type `typ` with `value` in every lane."""
    one = b.insert_element(ir.Constant(typ, ir.Undefined), value, ir.Constant(I32, 0))
    # An all-zero mask as zeroinitializer: no constant object per lane (IR building time).
    return b.shuffle_vector(one, ir.Constant(typ, ir.Undefined),
                            ir.Constant(ir.VectorType(I32, typ.count), None))


def transpose(b, rows: list) -> list:
    """The transpose of a square block given as a list of row vectors, in log2(n) stages
    of two-vector shuffles."""
    n = len(rows)
    rows = list(rows)
    half = n // 2
    while half:
        out = list(rows)
        for i in range(n):
            if i & half:
                continue
            lo, hi = rows[i], rows[i + half]
            out[i] = b.shuffle_vector(lo, hi, ir.Constant(
                ir.VectorType(I32, n), [q if not q & half else n + q - half for q in range(n)]))
            out[i + half] = b.shuffle_vector(lo, hi, ir.Constant(
                ir.VectorType(I32, n), [q + half if not q & half else n + q for q in range(n)]))
        rows = out
        half //= 2
    return rows


def fma_of(mc, vec: ir.VectorType) -> ir.Function:
    """llvm.fma over float vectors of type `vec` (declared once per module)."""
    return mc.function(f"llvm.fma.v{vec.count}{_suffix(vec)}", vec, [vec] * 3)


def masked_load_of(mc, vec: ir.VectorType) -> ir.Function:
    """llvm.masked.load of a float vector: (ptr, i32 alignment, mask, passthrough)."""
    return mc.function(f"llvm.masked.load.v{vec.count}{_suffix(vec)}.p0", vec,
                       [PTR, I32, ir.VectorType(I1, vec.count), vec])


def masked_store_of(mc, vec: ir.VectorType) -> ir.Function:
    """llvm.masked.store of a float vector: (value, ptr, i32 alignment, mask)."""
    return mc.function(f"llvm.masked.store.v{vec.count}{_suffix(vec)}.p0", VOID,
                       [vec, PTR, I32, ir.VectorType(I1, vec.count)])


def gather_of(mc, vec: ir.VectorType) -> ir.Function:
    """llvm.masked.gather of a float vector: (pointers, i32 alignment, mask, passthrough)."""
    n = vec.count
    return mc.function(f"llvm.masked.gather.v{n}{_suffix(vec)}.v{n}p0", vec,
                       [ir.VectorType(PTR, n), I32, ir.VectorType(I1, n), vec])


def scatter_of(mc, vec: ir.VectorType) -> ir.Function:
    """llvm.masked.scatter of a float vector: (value, pointers, i32 alignment, mask)."""
    n = vec.count
    return mc.function(f"llvm.masked.scatter.v{n}{_suffix(vec)}.v{n}p0", VOID,
                       [vec, ir.VectorType(PTR, n), I32, ir.VectorType(I1, n)])
