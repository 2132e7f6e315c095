"""One kernel under construction: an internal LLVM function computing one node (or one
copy), with loop, thread-split and memory helpers that lowerings build on, and the
operands (`Operand`) it reads and writes.

A kernel's signature is (ptr noalias buffer..., i64 tid, i64 nthreads, i64 step): every
distinct buffer it touches is a parameter, and it computes only its thread's share of the
work; `step` is the call counter (random ops draw from it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.arith import smin
from graphc.backends.llvm.codegen.irtypes import I64, const, i64, llvm_type
from graphc.ir.node import Node

if TYPE_CHECKING:
    from graphc.backends.llvm.codegen.module import ModuleContext


@dataclass
class Operand:
    """A value a kernel reads or writes: its buffer pointer, concrete shape and dtype;
    `constant` holds a constant node's array (lowerings inline scalars); `strides` (in
    elements) are set when the value is a strided view of its buffer (schedule.views.View: `ptr`
    then points at its first element), else None (contiguous)."""

    ptr: ir.Value
    node: Node
    shape: tuple[int, ...]
    dtype: np.dtype
    constant: np.ndarray | None = None
    strides: tuple[int, ...] | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class Kernel:
    """The builder of one kernel function; `buffers[k]` is the pointer to operand k."""

    def __init__(self, mc: ModuleContext, name: str, n_buffers: int, n_scalars: int = 0):
        """n_scalars: i64 parameters after the buffers (`scalars`: a library function's
        run-time arguments, e.g. which item of its work to do)."""
        self.mc = mc
        fnty = ir.FunctionType(ir.VoidType(), [ir.PointerType()] * n_buffers
                               + [I64] * (n_scalars + 3))
        self.function = ir.Function(mc.module, fnty, name=name)
        self.function.linkage = "internal"
        # Kept out of the entry: inlining ~50 kernels into one function only slowed the
        # optimizer (barriers separate them, so nothing is gained across kernels).
        self.function.attributes.add("noinline")
        self.n_buffers = n_buffers
        for arg in self.function.args[:n_buffers]:
            arg.add_attribute("noalias")
        self.scalars = list(self.function.args[n_buffers:n_buffers + n_scalars])
        self.tid, self.nthreads, self.step = self.function.args[n_buffers + n_scalars:]
        self.b = ir.IRBuilder(self.function.append_basic_block("entry"))

    @property
    def buffers(self) -> list[ir.Argument]:
        return list(self.function.args[:self.n_buffers])

    def finish(self) -> None:
        self.b.ret_void()

    # ----- memory ------------------------------------------------------------------------
    def gep(self, ptr: ir.Value, dtype: np.dtype, index: ir.Value) -> ir.Value:
        return self.b.gep(ptr, [index], inbounds=True, source_etype=llvm_type(dtype))

    def load(self, ptr: ir.Value, dtype: np.dtype, index: ir.Value) -> ir.Value:
        return self.b.load(self.gep(ptr, dtype, index), typ=llvm_type(dtype))

    def store(self, value: ir.Value, ptr: ir.Value, dtype: np.dtype, index: ir.Value) -> None:
        self.b.store(value, self.gep(ptr, dtype, index))

    def alloca(self, typ: ir.Type, count: int = 1) -> ir.Value:
        """A stack slot (of `count` values), allocated once in the entry block (a single
        value is promoted to a register)."""
        here = self.b.block
        self.b.position_at_start(self.function.entry_basic_block)
        slot = self.b.alloca(typ, size=None if count == 1 else _as_i64(count))
        self.b.position_at_end(here)
        return slot

    # ----- control flow -------------------------------------------------------------------
    @contextlib.contextmanager
    def loop(self, start, stop, name: str = "i") -> Iterator[ir.Value]:
        """for i in range(start, stop): the body is emitted inside the with-block."""
        b = self.b
        start, stop = _as_i64(start), _as_i64(stop)
        before = b.block
        head = b.append_basic_block(f"{name}.head")
        body = b.append_basic_block(f"{name}.body")
        done = b.append_basic_block(f"{name}.end")
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64, name=name)
        i.add_incoming(start, before)
        b.cbranch(b.icmp_signed("<", i, stop), body, done)
        b.position_at_end(body)
        yield i
        i.add_incoming(b.add(i, _as_i64(1), flags=["nsw"]), b.block)
        b.branch(head)
        b.position_at_end(done)

    @contextlib.contextmanager
    def when(self, condition: ir.Value) -> Iterator[None]:
        """if condition: the body is emitted inside the with-block."""
        with self.b.if_then(condition):
            yield

    def split(self, total: int, align: int = 1) -> tuple[ir.Value, ir.Value]:
        """This thread's contiguous share [start, stop) of range(total), in chunks that
        are multiples of `align`; threads beyond the work get an empty range."""
        b = self.b
        n = self.nthreads
        chunk = b.sdiv(b.add(_as_i64(total), b.sub(n, _as_i64(1))), n)
        if align > 1:
            chunk = b.mul(b.sdiv(b.add(chunk, _as_i64(align - 1)), _as_i64(align)),
                          _as_i64(align))
        start = smin(b, b.mul(self.tid, chunk), _as_i64(total))
        stop = smin(b, b.add(start, chunk), _as_i64(total))
        return start, stop

    def first_thread(self) -> ir.Value:
        """i1: whether this is thread 0 (which does the work of serial kernels)."""
        return self.b.icmp_signed("==", self.tid, _as_i64(0))

    def fail(self, code: int, value: ir.Value) -> None:
        """Record a run-time error (the first one wins); the runner raises it in Python."""
        self.mc.record_error(self.b, code, value)


def _as_i64(value) -> ir.Value:
    return ir.Constant(I64, value) if isinstance(value, int) else value


def decompose(b: ir.IRBuilder, flat: ir.Value, dims: list[int]) -> list[ir.Value]:
    """The multi-index (row-major over dims) of a flat index."""
    index = []
    for d in reversed(dims[1:]):
        index.append(b.urem(flat, _as_i64(d)))
        flat = b.udiv(flat, _as_i64(d))
    index.append(flat)
    return index[::-1]


def dot(b: ir.IRBuilder, index: list[ir.Value], strides: list[int],
        base: ir.Value | None = None) -> ir.Value:
    """base + sum(index[k] * strides[k]), skipping zero strides."""
    total = base if base is not None else _as_i64(0)
    for i, s in zip(index, strides):
        if s:
            total = b.add(total, i if s == 1 else b.mul(i, _as_i64(s)))
    return total


def zero_run(k: Kernel, out: Operand, start, count: int) -> None:
    """out[start : start + count] = 0."""
    zero = const(out.dtype, 0)
    with k.loop(start, k.b.add(start, i64(count)), "z") as z:
        k.store(zero, out.ptr, out.dtype, z)

