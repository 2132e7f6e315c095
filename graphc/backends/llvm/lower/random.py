"""random_uniform: SplitMix64 over (seed, step, index), bit for bit as graphc/ops/random.py."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import F64, I64, convert, i64
from graphc.backends.llvm.codegen.nest import strided_nest
from graphc.backends.llvm.lower import lowering
from graphc.ops.random import splitmix64

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def u64(value: int) -> ir.Constant:
    """An i64 constant holding the unsigned 64-bit `value`."""
    value %= 2**64
    return ir.Constant(I64, value - 2**64 if value >= 2**63 else value)


def _mix(b: ir.IRBuilder, z: ir.Value) -> ir.Value:
    """SplitMix64's finalizer of z + golden ratio (wrapping i64 arithmetic)."""
    z = b.add(z, u64(_GOLDEN))
    z = b.mul(b.xor(z, b.lshr(z, i64(30))), u64(_MIX1))
    z = b.mul(b.xor(z, b.lshr(z, i64(27))), u64(_MIX2))
    return b.xor(z, b.lshr(z, i64(31)))


@lowering("random_uniform")
def emit_random_uniform(k, node, out, ins, scratch) -> None:
    b = k.b
    with np.errstate(over="ignore"):
        seed = int(splitmix64(np.array(node.attrs["seed"] % 2**64, dtype=np.uint64)))
    key = _mix(b, b.xor(u64(seed), k.step))

    def body(offsets):
        bits = _mix(b, b.add(key, offsets[0]))
        value = b.fmul(b.uitofp(b.lshr(bits, i64(40)), F64), ir.Constant(F64, 1.0 / (1 << 24)))
        k.store(convert(b, value, np.dtype("float64"), out.dtype), out.ptr, out.dtype,
                offsets[0])

    strided_nest(k, (out.size,), [[1]], body)
