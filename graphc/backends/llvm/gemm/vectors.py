"""Vector helpers the packers share: the shuffle transpose and intrinsic type suffixes."""

from __future__ import annotations

from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I32


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


def type_suffix(t: ir.Type) -> str:
    return "f32" if str(t) == "float" else "f64"
