"""pad and pad_grad. pad is a gather: each output element copies the input element its
position maps to per axis (constant mode: the value outside the input); threads split
output rows, each row's middle a contiguous copy, its padded ends mapped element by
element. pad_grad is the adjoint scatter: threads copy the center (a bijection onto the
input) in rows, then after a barrier the first thread adds every padded position's
gradient where it was copied from, in one fixed order (so the bits do not depend on the
thread count)."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.codegen.arith import add, smax, smin
from graphc.backends.llvm.codegen.irtypes import const, i64
from graphc.backends.llvm.codegen.kernel import decompose
from graphc.backends.llvm.lower import lowering
from graphc.ops.pad import check_fits


def check_sizes(node, shape) -> None:
    """Refuse, as the NumPy reference does, sizes bound at call time that the mode cannot
    pad (reflect: pads below the size; circular: at most it): the kernel would read
    outside the input."""
    for axis, (dim, (before, after)) in enumerate(zip(shape, node.attrs["pads"])):
        check_fits(node.op, node.attrs["mode"], dim, before, after, axis, shape,
                   error=ValueError)


def source(b, mode: str, i, before: int, size: int):
    """(index into an axis of `size`, i1 whether it is inside or None) that padded
    position i copies: reflect mirrors without repeating the edge, replicate repeats it,
    circular wraps around (pads at most the size), constant is inside or not."""
    j = b.sub(i, i64(before))
    if mode == "constant":
        inside = b.and_(b.icmp_signed(">=", j, i64(0)), b.icmp_signed("<", j, i64(size)))
        return j, inside
    if mode == "reflect":
        j = b.select(b.icmp_signed("<", j, i64(0)), b.neg(j), j)
        return b.select(b.icmp_signed(">=", j, i64(size)), b.sub(i64(2 * size - 2), j), j), None
    if mode == "replicate":
        return smax(b, smin(b, j, i64(size - 1)), i64(0)), None
    j = b.select(b.icmp_signed("<", j, i64(0)), b.add(j, i64(size)), j)
    return b.select(b.icmp_signed(">=", j, i64(size)), b.sub(j, i64(size)), j), None


def _strides(shape) -> list[int]:
    out, total = [], 1
    for d in reversed(shape):
        out.append(total)
        total *= d
    return out[::-1]


def _source_row(b, mode, index, pads, in_shape):
    """(flat start of the input row that output row `index` (its leading indices) copies,
    i1 whether it lies inside the input (constant mode) or None); in_shape: the input's."""
    strides = _strides(in_shape)[:-1]
    base, inside = i64(0), None
    for i, (before, _), size, stride in zip(index, pads, in_shape[:-1], strides):
        j, ok = source(b, mode, i, before, size)
        if ok is not None:
            inside = ok if inside is None else b.and_(inside, ok)
            j = b.select(ok, j, i64(0))
        base = b.add(base, b.mul(j, i64(stride)))
    return base, inside


@lowering("pad")
def emit_pad(k, node, out, ins, scratch) -> None:
    (x,) = ins
    pads, mode = node.attrs["pads"], node.attrs["mode"]
    check_sizes(node, x.shape)
    if out.size == 0:
        return
    b, dt = k.b, out.dtype
    value = const(dt, node.attrs.get("value", 0.0))
    width, size = out.shape[-1], x.shape[-1]
    before, after = pads[-1]
    start, stop = k.split(out.size // width)
    with k.loop(start, stop, "row") as row:
        dst = b.mul(row, i64(width))
        base, inside = _source_row(b, mode, decompose(b, row, list(out.shape[:-1])),
                                   pads[:-1], x.shape)

        def fill():
            with k.loop(0, width, "fill") as j:
                k.store(value, out.ptr, dt, b.add(dst, j))

        def copy():
            def mapped(j):
                col, ok = source(b, mode, j, before, size)
                if ok is None:
                    return k.load(x.ptr, dt, b.add(base, col))
                return value  # constant mode: the ends lie outside
            with k.loop(0, before, "left") as j:
                k.store(mapped(j), out.ptr, dt, b.add(dst, j))
            with k.loop(0, size, "mid") as j:  # a contiguous run: vectorized
                k.store(k.load(x.ptr, dt, b.add(base, j)), out.ptr, dt,
                        b.add(dst, b.add(j, i64(before))))
            with k.loop(before + size, width, "right") as j:
                k.store(mapped(j), out.ptr, dt, b.add(dst, j))

        if inside is None:
            copy()
        else:
            with b.if_else(inside) as (yes, no):
                with yes:
                    copy()
                with no:
                    fill()


@lowering("pad_grad")
def emit_pad_grad(k, node, out, ins, scratch) -> None:
    (g,) = ins
    pads, mode = node.attrs["pads"], node.attrs["mode"]
    check_sizes(node, out.shape)
    if out.size == 0:
        return
    b, dt = k.b, out.dtype
    g_strides = _strides(g.shape)
    width = out.shape[-1]
    # The center: out[index] = g[index + before], rows split among threads.
    offset = sum(p[0] * s for p, s in zip(pads, g_strides))
    start, stop = k.split(out.size // width)
    with k.loop(start, stop, "row") as row:
        index = decompose(b, row, list(out.shape[:-1]))
        src = b.add(i64(offset), sum_dot(b, index, g_strides[:-1]))
        dst = b.mul(row, i64(width))
        with k.loop(0, width, "c") as j:
            k.store(k.load(g.ptr, dt, b.add(src, j)), out.ptr, dt, b.add(dst, j))
    if mode == "constant":
        return
    k.mc.wait_all(b, k.nthreads)  # the border adds onto centers other threads copied
    out_strides = _strides(out.shape)
    g_width = g.shape[-1]
    before, after = pads[-1]
    with k.when(k.first_thread()):
        rows = int(np.prod(g.shape[:-1], dtype=np.int64))
        with k.loop(0, rows, "grow") as row:
            index = decompose(b, row, list(g.shape[:-1]))
            centered = _all_center(b, index, pads[:-1], out.shape[:-1])
            target = i64(0)
            for i, (lo, _), size, stride in zip(index, pads[:-1], out.shape[:-1], out_strides):
                j, _ = source(b, mode, i, lo, size)
                target = b.add(target, b.mul(j, i64(stride)))
            g_row = b.mul(row, i64(g_width))

            def scatter(first, last):
                with k.loop(first, last, "col") as p:
                    col, _ = source(b, mode, p, before, width)
                    at = b.add(target, col)
                    total = add(b, dt, k.load(out.ptr, dt, at),
                                k.load(g.ptr, dt, b.add(g_row, p)))
                    k.store(total, out.ptr, dt, at)

            with b.if_else(centered) as (middle_row, border_row):
                with middle_row:  # only the row's ends are padding
                    scatter(i64(0), i64(before))
                    scatter(i64(before + width), i64(g_width))
                with border_row:  # the whole row is padding
                    scatter(i64(0), i64(g_width))


def sum_dot(b, index, strides):
    total = i64(0)
    for i, s in zip(index, strides):
        total = b.add(total, b.mul(i, i64(s)))
    return total


def _all_center(b, index, pads, sizes):
    """i1: whether a padded row's leading indices all lie in the center (not padding)."""
    flag = None
    for i, (before, _), size in zip(index, pads, sizes):
        ok = b.and_(b.icmp_signed(">=", i, i64(before)), b.icmp_signed("<", i, i64(before + size)))
        flag = ok if flag is None else b.and_(flag, ok)
    return flag if flag is not None else b.icmp_signed("==", i64(0), i64(0))
