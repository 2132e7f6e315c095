"""Strided loop nests: out[...] = f(in_0[...], in_1[...], ...) over an output shape where
every operand is addressed by its own strides (0 for broadcast axes). Axes that are
contiguous for every operand are merged, the innermost loop runs over the last merged axis
(unit or zero strides, which LLVM vectorizes), and threads split the outer rows, or the
inner axis when there is only one row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.irtypes import i64
from graphc.backends.llvm.kernel import Kernel, decompose, dot

VECTOR_ALIGN = 64  # elements: thread shares of a single row start on whole vectors


def contiguous_strides(shape: tuple[int, ...]) -> list[int]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return strides[::-1]


def broadcast_strides(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Strides (in elements) that read a contiguous array of `shape` broadcast to out_shape."""
    own = contiguous_strides(shape)
    pad = len(out_shape) - len(shape)
    return [0] * pad + [0 if d == 1 else s for d, s in zip(shape, own)]


def collapse(shape: tuple[int, ...], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop unit axes and merge neighbours that are contiguous for every operand."""
    keep = [k for k, d in enumerate(shape) if d != 1]
    dims = [shape[k] for k in keep]
    table = [[s[k] for k in keep] for s in strides]
    k = len(dims) - 2
    while k >= 0:
        if all(t[k] == t[k + 1] * dims[k + 1] for t in table):
            dims[k:k + 2] = [dims[k] * dims[k + 1]]
            for t in table:
                t[k:k + 2] = [t[k + 1]]
        k -= 1
    if not dims:
        return [1], [[0] for _ in strides]
    return dims, table


Body = Callable[[list[ir.Value]], None]


def strided_nest(k: Kernel, shape: tuple[int, ...], strides: list[list[int]], body: Body,
                 bases: list[int] | None = None, parallel: bool = True) -> None:
    """Run body(offsets) for every index of `shape`, offsets[j] = bases[j] + index . strides[j]
    (operand 0 is conventionally the output). Each index is visited by one thread."""
    if int(np.prod(shape, dtype=np.int64)) == 0:
        return
    dims, table = collapse(tuple(shape), strides)
    bases = bases or [0] * len(strides)
    inner = dims[-1]
    outer = dims[:-1]
    rows = int(np.prod(outer, dtype=np.int64))
    b = k.b
    if rows == 1:
        start, stop = k.split(inner, VECTOR_ALIGN) if parallel else (i64(0), i64(inner))
        with k.loop(start, stop, "j") as j:
            body([dot(b, [j], [t[-1]], i64(base)) for t, base in zip(table, bases)])
        return
    start, stop = k.split(rows) if parallel else (i64(0), i64(rows))
    with k.loop(start, stop, "r") as r:
        index = decompose(b, r, outer)
        row = [dot(b, index, t[:-1], i64(base)) for t, base in zip(table, bases)]
        with k.loop(0, inner, "j") as j:
            body([dot(b, [j], [t[-1]], base) for t, base in zip(table, row)])
