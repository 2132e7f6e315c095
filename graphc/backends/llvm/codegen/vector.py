"""The vector width and register count the register blocking sizes itself by, taken
from the target being compiled for (runtime/target.py: the host, or the target asked
for), and the vector helpers kernels share.

vector_bytes() is the width of one vector register: 64 bytes on AVX-512 (16 float32
lanes), 32 on AVX2, 16 on SSE and NEON. The GEMM's register tile, the direct and
Winograd convolutions, the weight gradient's register blocks and 2x2 pooling count their
lanes and align their scratch by it, and size their blocks of accumulators by
vector_registers(), so that what they keep in registers fits the register file.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I1, I32, PTR, VOID
from graphc.backends.llvm.runtime import target


def vector_bytes() -> int:
    """Bytes in one vector register of the target."""
    return target.current().vector_bytes


def native_vector_bytes() -> int:
    """Bytes the target executes in one vector op (less than vector_bytes() on CPUs that
    split their widest vectors: Zen 4's AVX-512)."""
    return target.current().native_vector_bytes


def vector_registers() -> int:
    """Vector registers of the target (16 on SSE and AVX2, 32 on AVX-512 and NEON)."""
    return target.current().vector_registers


def accumulators() -> int:
    """Vector accumulators a register block may keep: three quarters of the registers,
    the rest holding the operands being multiplied (24 of 32, 12 of 16)."""
    return vector_registers() * 3 // 4


def lanes(dtype: np.dtype) -> int:
    """Elements of `dtype` in one vector register of the target."""
    return vector_bytes() // np.dtype(dtype).itemsize


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
    """The transpose of a square block given as a list of row vectors: in log2(n) stages
    of two-vector shuffles when n is a power of two, else (the 6-row tiles of 16-register
    targets) lane by lane, which LLVM turns into shuffles and blends."""
    n = len(rows)
    if n & (n - 1):
        return _transpose_lanes(b, rows)
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



def _transpose_lanes(b, rows: list) -> list:
    """The transpose of any square block, each output lane extracted and inserted."""
    n = len(rows)
    typ = rows[0].type
    out = []
    for d in range(n):
        column = ir.Constant(typ, ir.Undefined)
        for t in range(n):
            lane = b.extract_element(rows[t], ir.Constant(I32, d))
            column = b.insert_element(column, lane, ir.Constant(I32, t))
        out.append(column)
    return out


def fma_of(mc, vec: ir.VectorType) -> ir.Function:
    """a * b + c over float vectors of type `vec` (declared once per module): llvm.fma,
    one rounding, where the target has FMA instructions; llvm.fmuladd elsewhere, a multiply
    and an add (llvm.fma there would be a libm call per element)."""
    name = "fma" if target.current().fma else "fmuladd"
    return mc.function(f"llvm.{name}.v{vec.count}{_suffix(vec)}", vec, [vec] * 3)


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
