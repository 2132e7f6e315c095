"""Gathers by integer ids: take (embedding rows), take_grad (rows summed into a table)
and one_hot. An id out of range is reported to the runner (which raises ValueError) and
never used as an address."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.codegen.irtypes import const, convert, i64
from graphc.backends.llvm.lower import lowering


def _id(k, ids, p, limit: int):
    """(id as i64, i1 whether it is in [0, limit)) of ids[p]; reports a bad one."""
    b = k.b
    value = convert(b, k.load(ids.ptr, ids.dtype, p), ids.dtype, np.dtype("int64"))
    ok = b.icmp_unsigned("<", value, i64(limit))
    with k.when(b.not_(ok)):
        k.fail(k.error_code, value)
    return value, ok


@lowering("take", error=lambda node, value: (
    f"embedding: id {value} is out of range [0, {node.inputs[0].shape[0]})"))
def emit_take(k, node, out, ins, scratch) -> None:
    table, ids = ins
    rows, row = table.shape[0], int(np.prod(table.shape[1:], dtype=np.int64))
    b = k.b
    start, stop = k.split(ids.size)
    with k.loop(start, stop, "p") as p:
        value, ok = _id(k, ids, p, rows)
        with k.when(ok):
            src, dst = b.mul(value, i64(row)), b.mul(p, i64(row))
            with k.loop(0, row, "j") as j:
                k.store(k.load(table.ptr, table.dtype, b.add(src, j)), out.ptr, out.dtype,
                        b.add(dst, j))


@lowering("take_grad", error=lambda node, value: (
    f"take_grad: id {value} is out of range [0, {node.attrs['rows']})"))
def emit_take_grad(k, node, out, ins, scratch) -> None:
    """Each thread owns a block of table rows and adds every id's gradient row that falls
    in it, in id order (as np.add.at)."""
    g, ids = ins
    rows = out.shape[0]
    row = int(np.prod(out.shape[1:], dtype=np.int64))
    b = k.b
    zero = const(out.dtype, 0)
    first, last = k.split(rows)
    with k.loop(b.mul(first, i64(row)), b.mul(last, i64(row)), "z") as z:
        k.store(zero, out.ptr, out.dtype, z)
    with k.loop(0, ids.size, "p") as p:
        value, ok = _id(k, ids, p, rows)
        mine = b.and_(ok, b.and_(b.icmp_signed(">=", value, first),
                                 b.icmp_signed("<", value, last)))
        with k.when(mine):
            src, dst = b.mul(p, i64(row)), b.mul(value, i64(row))
            with k.loop(0, row, "j") as j:
                at = b.add(dst, j)
                add = b.fadd if out.dtype.kind == "f" else b.add
                total = add(k.load(out.ptr, out.dtype, at),
                               k.load(g.ptr, g.dtype, b.add(src, j)))
                k.store(total, out.ptr, out.dtype, at)


@lowering("one_hot", error=lambda node, value: (
    f"one_hot: label {value} is out of range [0, {node.attrs['n']})"))
def emit_one_hot(k, node, out, ins, scratch) -> None:
    (labels,) = ins
    n = node.attrs["n"]
    b = k.b
    one, zero = const(out.dtype, 1), const(out.dtype, 0)
    start, stop = k.split(labels.size)
    with k.loop(start, stop, "p") as p:
        value, ok = _id(k, labels, p, n)
        label = b.select(ok, value, i64(-1))
        base = b.mul(p, i64(n))
        with k.loop(0, n, "c") as c:
            k.store(b.select(b.icmp_signed("==", c, label), one, zero), out.ptr, out.dtype,
                    b.add(base, c))


