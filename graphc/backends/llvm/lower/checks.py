"""Kernels that check values at call time: a bad element is reported to the runner, which
raises ValueError (as the reference does), and never used."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.codegen.irtypes import const, convert
from graphc.backends.llvm.lower import lowering
from graphc.ops.elementwise import negative_power_message


@lowering("nonnegative_check", inplace=True, error=negative_power_message)
def emit_nonnegative_check(k, node, out, ins, scratch) -> None:
    """out = x, reporting the first negative element a thread meets."""
    (x,) = ins
    b = k.b
    start, stop = k.split(out.size)
    with k.loop(start, stop, "p") as p:
        value = k.load(x.ptr, x.dtype, p)
        with k.when(b.icmp_signed("<", value, const(x.dtype, 0))):
            k.fail(k.error_code, convert(b, value, x.dtype, np.dtype("int64")))
        k.store(value, out.ptr, out.dtype, p)
