"""Gathers by integer ids: take (slices along an axis: embedding rows, index_select),
take_grad (slices summed into zeros), wrap_index (negative indices from the end) and
one_hot. An id out of range is reported to the runner (which raises ValueError) and
never used as an address."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.codegen.irtypes import const, convert, i64
from graphc.backends.llvm.lower import lowering
from graphc.ops.indexing import ids_message, wrap_message
from graphc.shapes import evaluate_dim


def _id(k, ids, p, limit: int, ignored: int | None = None):
    """(id as i64, i1 whether it is in [0, limit) and not `ignored`) of ids[p]; reports one
    out of range unless it is `ignored`."""
    b = k.b
    value = convert(b, k.load(ids.ptr, ids.dtype, p), ids.dtype, np.dtype("int64"))
    ok = b.icmp_unsigned("<", value, i64(limit))
    bad = b.not_(ok)
    if ignored is not None:
        kept = b.icmp_signed("!=", value, i64(ignored))
        ok, bad = b.and_(ok, kept), b.and_(bad, kept)
    with k.when(bad):
        k.fail(k.error_code, value)
    return value, ok


def _extent(shape, axis: int, count: int) -> tuple[int, int]:
    """(outer, inner): the element counts before `axis` and after the `count` axes from it."""
    return (int(np.prod(shape[:axis], dtype=np.int64)),
            int(np.prod(shape[axis + count:], dtype=np.int64)))


def _take_error(node, value) -> str:
    table = node.inputs[0]
    return ids_message(node.attrs["caller"], "id", value, table.shape[node.attrs["axis"]], node)


@lowering("take", error=_take_error)
def emit_take(k, node, out, ins, scratch) -> None:
    """Rows of `inner` elements copied: out[o, p, :] = table[o, ids[p], :]."""
    table, ids = ins
    axis = node.attrs["axis"]
    rows = table.shape[axis]
    outer, row = _extent(table.shape, axis, 1)
    count = ids.size
    b = k.b
    start, stop = k.split(outer * count)
    with k.loop(start, stop, "p") as q:
        o, p = b.udiv(q, i64(count)), b.urem(q, i64(count))
        value, ok = _id(k, ids, p, rows)
        with k.when(ok):
            src = b.mul(b.add(b.mul(o, i64(rows)), value), i64(row))
            dst = b.mul(q, i64(row))
            with k.loop(0, row, "j") as j:
                k.store(k.load(table.ptr, table.dtype, b.add(src, j)), out.ptr, out.dtype,
                        b.add(dst, j))


@lowering("take_grad", error=lambda node, value: ids_message(
    node.attrs["caller"], "id", value, node.attrs["rows"], node))
def emit_take_grad(k, node, out, ins, scratch) -> None:
    """Each thread owns a block of rows of the output (along the axis) and adds every id's
    gradient slice that falls in it, in id order (as np.add.at)."""
    g, ids = ins
    axis = node.attrs["axis"]
    rows = out.shape[axis]
    outer, row = _extent(out.shape, axis, 1)
    count = ids.size
    b = k.b
    zero = const(out.dtype, 0)
    first, last = k.split(rows)
    add = b.fadd if out.dtype.kind == "f" else b.add
    with k.loop(0, outer, "o") as o:
        block = b.mul(o, i64(rows))
        with k.loop(b.mul(b.add(block, first), i64(row)), b.mul(b.add(block, last), i64(row)),
                    "z") as z:
            k.store(zero, out.ptr, out.dtype, z)
        with k.loop(0, count, "p") as p:
            value, ok = _id(k, ids, p, rows)
            mine = b.and_(ok, b.and_(b.icmp_signed(">=", value, first),
                                     b.icmp_signed("<", value, last)))
            with k.when(mine):
                src = b.mul(b.add(b.mul(o, i64(count)), p), i64(row))
                dst = b.mul(b.add(block, value), i64(row))
                with k.loop(0, row, "j") as j:
                    at = b.add(dst, j)
                    total = add(k.load(out.ptr, out.dtype, at),
                                k.load(g.ptr, g.dtype, b.add(src, j)))
                    k.store(total, out.ptr, out.dtype, at)


@lowering("wrap_index", inplace=True, error=lambda node, value: wrap_message(
    node, value, node.attrs["size"]))
def emit_wrap_index(k, node, out, ins, scratch) -> None:
    """out = ids, negative ones plus the axis size; one outside [-size, size) is reported
    (and passed on as 0, never used: the call raises)."""
    (ids,) = ins
    size = evaluate_dim(node.attrs["size"], k.binding)
    b = k.b
    start, stop = k.split(out.size)
    zero, n = const(ids.dtype, 0), const(ids.dtype, size)
    with k.loop(start, stop, "p") as p:
        value = k.load(ids.ptr, ids.dtype, p)
        negative = b.icmp_signed("<", value, zero)
        wrapped = b.select(negative, b.add(value, n), value)
        bad = b.or_(b.icmp_signed("<", wrapped, zero), b.icmp_signed(">=", wrapped, n))
        with k.when(bad):
            k.fail(k.error_code, convert(b, value, ids.dtype, np.dtype("int64")))
        k.store(b.select(bad, zero, wrapped), out.ptr, out.dtype, p)


@lowering("one_hot", error=lambda node, value: (
    f"one_hot: label {value} is out of range [0, {node.attrs['n']})"))
def emit_one_hot(k, node, out, ins, scratch) -> None:
    (labels,) = ins
    n = node.attrs["n"]
    b = k.b
    one, zero = const(out.dtype, 1), const(out.dtype, 0)
    start, stop = k.split(labels.size)
    with k.loop(start, stop, "p") as p:
        value, ok = _id(k, labels, p, n, node.attrs.get("ignore_index"))
        label = b.select(ok, value, i64(-1))  # out of range or ignored: a row of zeros
        base = b.mul(p, i64(n))
        with k.loop(0, n, "c") as c:
            k.store(b.select(b.icmp_signed("==", c, label), one, zero), out.ptr, out.dtype,
                    b.add(base, c))


