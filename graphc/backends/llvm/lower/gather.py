"""Gather and scatter along one axis (graphc/ops/gather.py). Every operand is read through
its strides. An index out of [0, size) is reported to the runner (which raises ValueError
naming the op and the user's line) and never used as an address.

A scatter copies its input, then (after a barrier) each thread applies the index lines it
owns: a line is every position of the index along the axis for fixed other coordinates,
and distinct lines write distinct lines of the output, so threads never write one element
and each element's updates come in index order whatever the thread count."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.codegen.irtypes import convert, i64
from graphc.backends.llvm.codegen.kernel import decompose, dot
from graphc.backends.llvm.codegen.nest import strided_nest
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.reduction import Accumulator
from graphc.backends.llvm.lower.shape import copy_strided, strides_of
from graphc.backends.llvm.schedule.views import contiguous_strides
from graphc.ops.gather import index_error

COMBINE = {"sum": "sum", "prod": "prod", "amax": "max", "amin": "min"}


def checked_index(k, index, offset, size: int):
    """(index as i64, i1 whether it lies in [0, size)) of index[offset]; a bad one is
    reported."""
    b = k.b
    value = convert(b, k.load(index.ptr, index.dtype, offset), index.dtype, np.dtype("int64"))
    ok = b.icmp_unsigned("<", value, i64(size))
    with k.when(b.not_(ok)):
        k.fail(k.error_code, value)
    return value, ok


def _error(node, value) -> str:
    x, axis = node.inputs[0], node.attrs["axis"]
    return index_error(node.op, node, value, x.shape[axis], axis)


@lowering("gather", reads_strided=None, error=_error)
def emit_gather(k, node, out, ins, scratch) -> None:
    """out[i] = x[i with i[axis] = index[i]], over the index's shape."""
    x, index = ins
    axis = node.attrs["axis"]
    size = x.shape[axis]
    x_strides = strides_of(x)
    step = x_strides[axis]
    x_strides[axis] = 0
    b = k.b

    def body(offsets):
        value, ok = checked_index(k, index, offsets[1], size)
        with k.when(ok):
            at = b.add(offsets[2], b.mul(value, i64(step)))
            k.store(k.load(x.ptr, x.dtype, at), out.ptr, out.dtype, offsets[0])

    strided_nest(k, out.shape, [contiguous_strides(out.shape), strides_of(index), x_strides],
                 body)


@lowering("scatter", reads_strided=None, error=_error)
def emit_scatter(k, node, out, ins, scratch) -> None:
    x, index, src = ins
    axis, reduce = node.attrs["axis"], node.attrs["reduce"]
    out_strides = contiguous_strides(out.shape)
    copy_strided(k, out, x, out.shape, out_strides, strides_of(x))
    k.mc.wait_all(k.b, k.nthreads)
    if index.size == 0:
        return
    b = k.b
    size = out.shape[axis]
    others = [d for a, d in enumerate(index.shape) if a != axis]
    lines = int(np.prod(others, dtype=np.int64))
    strides = [strides_of(index), strides_of(src), out_strides]
    off_axis = [[s for a, s in enumerate(t) if a != axis] for t in strides]
    along = [t[axis] for t in strides]
    acc = Accumulator(k, COMBINE[reduce], out.dtype, 1) if reduce != "assign" else None
    start, stop = k.split(lines)
    with k.loop(start, stop, "line") as line:
        coords = decompose(b, line, others) if others else []
        bases = [dot(b, coords, t) for t in off_axis]
        with k.loop(0, index.shape[axis], "r") as r:
            value, ok = checked_index(k, index, b.add(bases[0], b.mul(r, i64(along[0]))), size)
            with k.when(ok):
                new = k.load(src.ptr, src.dtype, b.add(bases[1], b.mul(r, i64(along[1]))))
                at = b.add(bases[2], b.mul(value, i64(along[2])))
                if acc is not None:
                    new = acc.combine(k.load(out.ptr, out.dtype, at), new)
                k.store(new, out.ptr, out.dtype, at)
