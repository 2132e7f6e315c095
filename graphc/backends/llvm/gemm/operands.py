"""What a GEMM call site describes: its operands (strided, rows through an index map,
image patches), their index maps, and the GEMM itself."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

DIGITS = 3  # digits of an Affine index map


@dataclass(frozen=True)
class Affine:
    """`terms` integers as linear functions of an index's mixed-radix digits over `dims`
    (at most three; the first digit unbounded): digit d adds digit * coeffs[d][t] to term
    t, on top of `base`."""

    dims: tuple[int, ...]
    coeffs: tuple[tuple[int, ...], ...]
    base: tuple[int, ...] | None = None

    def fields(self, terms: int) -> list[int]:
        """[dim 1, dim 2, coeffs digit-major (DIGITS x terms), base (terms)], padded with
        digits of extent 1 at the end."""
        pad = DIGITS - len(self.dims)
        dims = list(self.dims[1:]) + [1] * pad
        coeffs = [c for row in self.coeffs for c in row] + [0] * (pad * terms)
        return dims + coeffs + list(self.base or (0,) * terms)


@dataclass(frozen=True)
class Strided:
    """A matrix operand at ptr[batch part + row * row_stride + col * col_stride]."""

    ptr: ir.Value
    dtype: np.dtype
    batch_strides: tuple[int, ...]
    row_stride: int
    col_stride: int


@dataclass(frozen=True)
class Rows:
    """An A operand at ptr[batch part + row * row_stride + cols(col)] (cols: one term)."""

    ptr: ir.Value
    dtype: np.dtype
    batch_strides: tuple[int, ...]
    row_stride: int
    cols: Affine


@dataclass(frozen=True)
class Patches:
    """A B operand of zero-padded images: ptr[batch part + offset + iy * width + ix], where
    a row's and a column's Affine give (offset, iy, ix) terms that add up; anything outside
    [0, height) x [0, width) reads as zero."""

    ptr: ir.Value
    dtype: np.dtype
    size: int  # elements of the operand (gathers take 32-bit indices)
    batch_strides: tuple[int, ...]
    height: int
    width: int
    rows: Affine
    cols: Affine


def strided(ptr, dtype, batch_strides, row_stride: int, col_stride: int) -> Strided:
    return Strided(ptr, np.dtype(dtype), tuple(batch_strides), row_stride, col_stride)


@dataclass
class Gemm:
    """One GEMM: shapes, operands (A: Strided or Rows; B: Strided or Patches), where C
    goes (contiguous rows of ldc elements, batch b at b * c_batch_stride), and an
    epilogue(batch index, r0, r1, c0, c1) run on each finished C block."""

    batch: tuple[int, ...]
    m: int
    n: int
    k: int
    dtype: np.dtype
    a: Strided | Rows
    b: Strided | Patches
    c: ir.Value
    ldc: int
    c_batch_stride: int
    epilogue: object = None
