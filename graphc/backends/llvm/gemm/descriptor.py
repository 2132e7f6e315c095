"""The per-site descriptor: a constant i64 array of shapes, cache blocks, strides and
index maps that parameterizes the shared driver at run time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from graphc.backends.llvm.gemm.blocking import Blocking
from graphc.backends.llvm.gemm.operands import DIGITS, Affine, Gemm, Patches, Rows

MAX_BATCH = 4  # batch dims a descriptor holds (more are folded where strides allow)
MIN_RUN = 8  # image-row runs along the depth at least this long are packed by transposes

_AFFINE1 = 2 + DIGITS + 1
_AFFINE3 = 2 + 3 * DIGITS + 3
_LAYOUT = [("m", 1), ("n", 1), ("k", 1), ("ldc", 1), ("c_batch", 1), ("mc", 1), ("nc", 1),
           ("kc", 1), ("m_blocks", 1), ("n_blocks", 1), ("items", 1), ("slot", 1),
           ("b_pack", 1), ("tile", 1), ("a_cols", 1), ("b_rows", 1), ("b_cols", 1),
           ("batch", MAX_BATCH), ("a_batch", MAX_BATCH), ("b_batch", MAX_BATCH),
           ("a_rs", 1), ("a_cs", 1), ("a_map", _AFFINE1), ("b_rs", 1), ("b_cs", 1), ("height", 1),
           ("width", 1), ("b_runs", 1), ("b_row_map", _AFFINE3), ("b_col_map", _AFFINE3)]
FIELDS: dict[str, tuple[int, int]] = {}
for _name, _count in _LAYOUT:
    FIELDS[_name] = (sum(c for _, c in FIELDS.values()), _count)


def descriptor(g: Gemm, blocks: Blocking) -> list[int]:
    dtype = np.dtype(g.dtype)
    layout = blocks.layout(dtype)
    batch = int(np.prod(g.batch, dtype=np.int64))
    m_blocks, n_blocks = -(-g.m // blocks.mc), -(-g.n // blocks.nc)
    pad = MAX_BATCH - len(g.batch)
    a = g.a if isinstance(g.a, Rows) else Rows(
        g.a.ptr, g.a.dtype, g.a.batch_strides, g.a.row_stride, Affine((0,), ((g.a.col_stride,),)))
    values = {"m": g.m, "n": g.n, "k": g.k, "ldc": g.ldc, "c_batch": g.c_batch_stride,
              "mc": blocks.mc, "nc": blocks.nc, "kc": blocks.kc, "m_blocks": m_blocks,
              "n_blocks": n_blocks, "items": batch * m_blocks * n_blocks,
              "slot": layout["end"], "b_pack": layout["b_pack"], "tile": layout["tile"],
              "a_cols": layout["a_cols"], "b_rows": layout["b_rows"],
              "b_cols": layout["b_cols"], "batch": [1] * pad + list(g.batch),
              "a_batch": [0] * pad + list(a.batch_strides),
              "b_batch": [0] * pad + list(g.b.batch_strides),
              "a_rs": a.row_stride, "a_cs": _linear_stride(a.cols),
              "a_map": a.cols.fields(1)}
    if isinstance(g.b, Patches):
        values.update(height=g.b.height, width=g.b.width, b_row_map=g.b.rows.fields(3),
                      b_col_map=g.b.cols.fields(3), b_runs=int(_depth_runs(g.b.rows)))
    else:
        values.update(b_rs=g.b.row_stride, b_cs=g.b.col_stride)
    out = [0] * sum(c for _, c in _LAYOUT)
    for name, value in values.items():
        at, count = FIELDS[name]
        value = list(value) if isinstance(value, list) else [value]
        assert len(value) == count, name
        out[at:at + count] = [int(v) for v in value]
    return out


def _linear_stride(cols: Affine) -> int:
    """The column stride of an A whose column offsets are col * stride, else 0."""
    return cols.coeffs[0][0] if len(cols.dims) == 1 and not any(cols.base or ()) else 0


def _depth_runs(rows: Affine) -> bool:
    """Whether consecutive depths of an image-patch B step along image rows (the weight
    gradient's depth runs over output pixels, stride 1) in runs worth vector loads."""
    return rows.dims[-1] >= MIN_RUN and tuple(rows.coeffs[-1]) == (0, 0, 1)


def fold_batch(g: Gemm) -> Gemm:
    """The same GEMM with adjacent batch dims merged while more than MAX_BATCH remain and
    both operands step through them as one axis."""
    batch, sa, sb = list(g.batch), list(g.a.batch_strides), list(g.b.batch_strides)
    d = len(batch) - 2
    while len(batch) > MAX_BATCH and d >= 0:
        if all(s[d] == s[d + 1] * batch[d + 1] for s in (sa, sb)):
            batch[d:d + 2] = [batch[d] * batch[d + 1]]
            sa[d:d + 2], sb[d:d + 2] = [sa[d + 1]], [sb[d + 1]]
        d = min(d, len(batch) - 2) - 1 if len(batch) > MAX_BATCH else d
    if len(batch) > MAX_BATCH:
        raise NotImplementedError(f"llvm backend: a GEMM with {len(g.batch)} batch dims "
                                  f"{g.batch} whose operand strides do not merge to "
                                  f"{MAX_BATCH}")
    a = _with_batch(g.a, tuple(sa))
    return Gemm(tuple(batch), g.m, g.n, g.k, g.dtype, a, _with_batch(g.b, tuple(sb)), g.c,
                g.ldc, g.c_batch_stride, g.epilogue)


def _with_batch(operand, strides):
    return replace(operand, batch_strides=strides)
