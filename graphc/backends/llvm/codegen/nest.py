"""Strided loop nests: out[...] = f(in_0[...], in_1[...], ...) over an output shape where
every operand is addressed by its own strides (0 for broadcast axes). Axes that are
contiguous for every operand are merged, the innermost loop runs over the last merged axis
(unit or zero strides, which LLVM vectorizes), and threads split the outer rows, or the
inner axis when there is only one row.

Big contiguous outputs are streamed (`streamed_loop`): computed a block at a time into a
stack buffer, then written with aligned non-temporal vector stores, which skip reading
the output's cache lines before overwriting them (a third of a copy's memory traffic).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I32, I64, i64, llvm_type
from graphc.backends.llvm.codegen.kernel import Kernel, decompose, dot
from graphc.backends.llvm.runtime import target
from graphc.backends.llvm.schedule.views import contiguous_strides

VECTOR_ALIGN = 64  # elements: thread shares of a single row start on whole vectors
# Outputs from this size on are streamed: far past the L2 (1 MB a core), and most of the
# L3 (32 MB) would go to a value that is written once and read once later.
STREAM_BYTES = 8 << 20
STREAM_BLOCK = 2048  # bytes a block computes into the stack before it is streamed out
CACHE_LINE = 64


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


def streams(shape: tuple[int, ...], strides: list[list[int]], dtype: np.dtype) -> bool:
    """Whether an output of `shape` (operand 0 of `strides`) is streamed: big, one
    contiguous run for every operand, on x86-64 (non-temporal stores need an sfence)."""
    dims, table = collapse(tuple(shape), strides)
    return (len(dims) == 1 and table[0] == [1]
            and dims[0] * np.dtype(dtype).itemsize >= STREAM_BYTES
            and target.current().x86)


Value = Callable[[list[ir.Value]], ir.Value]


def streamed_loop(k: Kernel, n: int, strides: list[int], value: Value, out: ir.Value,
                  dtype: np.dtype) -> None:
    """out[i] = value(offsets) for i in range(n), offsets[j] = i * strides[j] (operand 0
    is out, stride 1): threads split the range; each runs up to the first 64-byte line of
    its share element by element, then blocks computed into an aligned stack buffer and
    copied out with non-temporal vector stores, then the rest element by element."""
    b = k.b
    dtype = np.dtype(dtype)
    t = llvm_type(dtype)
    size = dtype.itemsize
    lanes, block = CACHE_LINE // size, STREAM_BLOCK // size
    buffer = k.alloca(ir.ArrayType(t, block))
    buffer.align = CACHE_LINE

    def cell(i):
        return b.gep(buffer, [i64(0), i], inbounds=True)

    def element(i):
        k.store(value([b.mul(i, i64(s)) for s in strides]), out, dtype, i)

    start, stop = k.split(n, VECTOR_ALIGN)
    address = b.ptrtoint(k.gep(out, dtype, start), I64)
    head = b.udiv(b.and_(b.sub(i64(0), address), i64(CACHE_LINE - 1)), i64(size))
    lined = b.add(start, head)
    lined = b.select(b.icmp_signed("<", lined, stop), lined, stop)
    blocks = b.sdiv(b.sub(stop, lined), i64(block))
    rest = b.add(lined, b.mul(blocks, i64(block)))
    with k.loop(start, lined, "head") as i:
        element(i)
    with k.loop(0, blocks, "block") as j:
        first = b.add(lined, b.mul(j, i64(block)))
        with k.loop(0, block, "fill") as i:
            at = b.add(first, i)
            b.store(value([b.mul(at, i64(s)) for s in strides]), cell(i))
        vector = ir.VectorType(t, lanes)
        hint = k.mc.module.add_metadata([ir.Constant(I32, 1)])
        with k.loop(0, block // lanes, "line") as line:
            at = b.mul(line, i64(lanes))
            chunk = b.load(cell(at), typ=vector, align=CACHE_LINE)
            store = b.store(chunk, k.gep(out, dtype, b.add(first, at)), align=CACHE_LINE)
            store.set_metadata("nontemporal", hint)
    with k.loop(rest, stop, "tail") as i:
        element(i)
    # Non-temporal stores are weakly ordered: fence them before other threads read.
    b.call(k.mc.function("llvm.x86.sse.sfence", ir.VoidType(), []), [])
