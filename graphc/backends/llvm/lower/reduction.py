"""Reductions (sum, mean, prod, max, min), argmax and argmin, each output element reduced
by one thread in a fixed order, so results do not depend on the thread count.

When the reduced axes are followed by kept axes ((K, R, J): a bias gradient, a mean over
the batch), rows of J are accumulated in the output with unit stride, which vectorizes;
otherwise each output element runs its own loop, whose float sums LLVM may split into
vector lanes (reassociation: a fixed order, but not NumPy's). float32 sums of the innermost
axis accumulate in float64.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc import dtypes
from graphc.backends.llvm.codegen.expr import ExpressionEmitter
from graphc.backends.llvm.codegen.irtypes import const, convert, i64, icmp, llvm_type
from graphc.backends.llvm.codegen.kernel import decompose, dot
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.schedule.views import contiguous_strides
from graphc.ops.reduction import check_reducible, reduced_count


class Source:
    """The elements a reduction combines: operands addressed by strides over an iteration
    space, and `value(offsets)` computing one element (as `dtype`) from their offsets."""

    def __init__(self, shape, strides: list[list[int]], value, dtype: np.dtype):
        self.shape, self.strides, self.value, self.dtype = tuple(shape), strides, value, dtype


def array_source(k, x) -> Source:
    """The elements of one contiguous operand."""
    return Source(x.shape, [contiguous_strides(x.shape)],
                  lambda offsets: k.load(x.ptr, x.dtype, offsets[0]), x.dtype)


def runs(source: Source, reduced: set[int]) -> list[tuple[int, bool, list[int]]]:
    """(size, is_reduced, strides) of runs of adjacent axes of one kind that are contiguous
    for every operand; unit axes dropped."""
    out: list[list] = []
    for axis, d in enumerate(source.shape):
        if d == 1:
            continue
        kind = axis in reduced
        strides = [s[axis] for s in source.strides]
        if out and out[-1][1] == kind and all(
                prev == s * d for prev, s in zip(out[-1][2], strides)):
            out[-1][0] *= d
            out[-1][2] = strides
        else:
            out.append([d, kind, strides])
    return [tuple(r) for r in out]


class Accumulator:
    """How one reduction combines values: identity, step and final division."""

    def __init__(self, k, op: str, dtype: np.dtype, count: int):
        self.k, self.op, self.dtype, self.count = k, op, np.dtype(dtype), count
        self.emitter = ExpressionEmitter(k.b, k.mc, self.dtype, {})

    def identity(self) -> ir.Value:
        dtype = self.dtype
        if self.op in ("sum", "mean"):
            return const(dtype, 0)
        if self.op == "prod":
            return const(dtype, 1)
        if dtype.kind == "f":
            return const(dtype, -np.inf if self.op == "max" else np.inf)
        if dtype == dtypes.BOOL:
            return const(dtype, 0 if self.op == "max" else 1)
        info = np.iinfo(dtype)
        return const(dtype, info.min if self.op == "max" else info.max)

    def combine(self, acc: ir.Value, value: ir.Value, reassociate: bool = False) -> ir.Value:
        """acc op value; `reassociate` lets LLVM split a float sum into vector lanes
        (partial sums combined in an order fixed at compile time, the same on every
        thread)."""
        b = self.k.b
        if self.op in ("sum", "mean"):
            if self.dtype.kind != "f":
                return b.add(acc, value)
            return b.fadd(acc, value, flags=("reassoc",) if reassociate else ())
        if self.op == "prod":
            if self.dtype.kind != "f":
                return b.mul(acc, value)
            return b.fmul(acc, value, flags=("reassoc",) if reassociate else ())
        if self.dtype.kind == "f" and reassociate:
            # IEEE maximum/minimum propagate NaN like NumPy and are associative, so LLVM
            # splits the loop into vector lanes (the select form stays scalar).
            return self.emitter.intrinsic("maximum" if self.op == "max" else "minimum",
                                          acc, value)
        return self.emitter._extremum(acc, value, ">" if self.op == "max" else "<")

    def finish(self, acc: ir.Value, out_dtype: np.dtype) -> ir.Value:
        b = self.k.b
        if self.op == "mean":
            acc = convert(b, acc, self.dtype, out_dtype)
            return b.fdiv(acc, const(out_dtype, self.count))
        return convert(b, acc, self.dtype, out_dtype)


@lowering("sum", "mean", "prod", "max", "min")
def emit_reduction(k, node, out, ins, scratch) -> None:
    reduce(k, node.op, array_source(k, ins[0]), set(node.attrs["axes"]), out, node)


def reduce(k, op: str, source: Source, axes: set[int], out, node) -> None:
    """out = op-reduction of the source's elements over `axes` (out is contiguous over
    the kept axes). A max/min over no elements raises ValueError naming where the user
    built `node`'s reduction, as the reference does."""
    count = reduced_count(source.shape, sorted(axes))
    check_reducible(op, source.shape, tuple(sorted(axes)), node)
    if out.size == 0:
        return
    if count == 0:
        _fill(k, out, {"sum": 0, "prod": 1}.get(op, np.nan))
        return
    groups = runs(source, axes)
    kinds = [r[1] for r in groups]
    if len(groups) >= 2 and kinds[-1] is False and kinds[-2] is True and not any(kinds[:-2]):
        _rows(k, op, source, out, groups, count)
    else:
        _scalar(k, op, source, out, groups, count)


def _fill(k, out, value: float) -> None:
    """Every output element = value: a sum over no elements is 0, a product 1, a mean NaN
    (0/0), as in NumPy (the loops below would read the first element, which does not exist)."""
    start, stop = k.split(out.size)
    with k.loop(start, stop, "o") as o:
        k.store(const(out.dtype, value), out.ptr, out.dtype, o)


def _acc_dtype(op: str, x_dtype: np.dtype, out_dtype: np.dtype, inner: bool) -> np.dtype:
    if op == "prod":
        return out_dtype
    if op in ("sum", "mean"):
        if out_dtype == dtypes.FLOAT32 and inner:
            return dtypes.FLOAT64
        return out_dtype if out_dtype.kind == "f" or op == "sum" else dtypes.FLOAT64
    return x_dtype


def _rows(k, op, source, out, groups, count) -> None:
    """(K, R, J) with J last: out[k, :] accumulates x[k, r, :] over r, J vectorized."""
    outer_runs = groups[:-2]
    outer = int(np.prod([r[0] for r in outer_runs], dtype=np.int64))
    (size_r, _, stride_r), (size_j, _, stride_j) = groups[-2], groups[-1]
    acc = Accumulator(k, op, _acc_dtype(op, source.dtype, out.dtype, False), count)
    b = k.b
    if outer == 1:
        rows, (j0, j1) = (i64(0), i64(1)), k.split(size_j, 64)
    else:
        rows, (j0, j1) = k.split(outer), (i64(0), i64(size_j))
    work = acc.dtype

    def element(bases, r, j):
        offsets = [b.add(base, b.add(b.mul(r, i64(sr)), b.mul(j, i64(sj))))
                   for base, sr, sj in zip(bases, stride_r, stride_j)]
        return convert(b, source.value(offsets), source.dtype, work)

    with k.loop(*rows, "o") as o:
        index = decompose(b, o, [r[0] for r in outer_runs]) if outer_runs else []
        bases = [dot(b, index, [r[2][n] for r in outer_runs])
                 for n in range(len(source.strides))]
        out_base = b.mul(o, i64(size_j))
        with k.loop(j0, j1, "j") as j:
            value = element(bases, i64(0), j)
            k.store(convert(b, value, work, out.dtype), out.ptr, out.dtype, b.add(out_base, j))
        with k.loop(1, size_r, "r") as r:
            with k.loop(j0, j1, "j") as j:
                at = b.add(out_base, j)
                current = convert(b, k.load(out.ptr, out.dtype, at), out.dtype, work)
                k.store(convert(b, acc.combine(current, element(bases, r, j)), work, out.dtype),
                        out.ptr, out.dtype, at)
        if op == "mean":
            with k.loop(j0, j1, "j") as j:
                at = b.add(out_base, j)
                total = k.load(out.ptr, out.dtype, at)
                k.store(b.fdiv(total, const(out.dtype, count)), out.ptr, out.dtype, at)


def _scalar(k, op, source, out, groups, count) -> None:
    """Each output element: a loop over the reduced axes in order."""
    kept = [r for r in groups if not r[1]]
    reduced = [r for r in groups if r[1]]
    inner = bool(groups) and groups[-1][1]
    acc = Accumulator(k, op, _acc_dtype(op, source.dtype, out.dtype, inner), count)
    b = k.b
    start, stop = k.split(out.size)
    slot = k.alloca(llvm_type(acc.dtype))
    with k.loop(start, stop, "o") as o:
        index = decompose(b, o, [r[0] for r in kept]) if kept else []
        bases = [dot(b, index, [r[2][n] for r in kept]) for n in range(len(source.strides))]
        b.store(acc.identity(), slot)

        def nest(level: int, offsets: list) -> None:
            if level == len(reduced):
                value = convert(b, source.value(offsets), source.dtype, acc.dtype)
                b.store(acc.combine(b.load(slot), value, reassociate=True), slot)
                return
            size, _, strides = reduced[level]
            with k.loop(0, size, f"r{level}") as r:
                nest(level + 1, [b.add(off, b.mul(r, i64(s))) for off, s in zip(offsets, strides)])

        nest(0, bases)
        k.store(acc.finish(b.load(slot), out.dtype), out.ptr, out.dtype, o)


@lowering("argmax", "argmin")
def emit_argmax(k, node, out, ins, scratch) -> None:
    """Index of the first maximum (minimum); a NaN counts as the extremum (NumPy)."""
    (x,) = ins
    axis = node.attrs["axis"]
    better = ">" if node.op == "argmax" else "<"
    check_reducible(node.op, x.shape, tuple(range(len(x.shape))) if axis is None else (axis,),
                    node)
    if out.size == 0:
        return
    if axis is None:
        outer, size, inner = 1, x.size, 1
    else:
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        size = x.shape[axis]
        inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    b = k.b
    best_slot = k.alloca(llvm_type(x.dtype))
    index_slot = k.alloca(llvm_type(out.dtype))
    start, stop = k.split(outer * inner)
    floating = x.dtype.kind == "f"
    with k.loop(start, stop, "o") as o:
        base = b.add(b.mul(b.udiv(o, i64(inner)), i64(size * inner)), b.urem(o, i64(inner)))
        b.store(k.load(x.ptr, x.dtype, base), best_slot)
        b.store(i64(0), index_slot)
        with k.loop(1, size, "r") as r:
            value = k.load(x.ptr, x.dtype, b.add(base, b.mul(r, i64(inner))))
            best = b.load(best_slot)
            if floating:
                greater = b.fcmp_ordered(better, value, best)
                nan_first = b.and_(b.fcmp_unordered("uno", value, value),
                                   b.fcmp_ordered("ord", best, best))
                take = b.or_(greater, nan_first)
            else:
                take = icmp(b, x.dtype, better, value, best)  # uint8: unsigned
            b.store(b.select(take, value, best), best_slot)
            b.store(b.select(take, r, b.load(index_slot)), index_slot)
        k.store(b.load(index_slot), out.ptr, out.dtype, o)
