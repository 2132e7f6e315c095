"""Creation ops computed at call time: arange of a symbolic size (the static ones are
constants), start + i * step in int64 or float64 and converted, as the reference."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm.codegen.irtypes import F64, const, convert
from graphc.backends.llvm.lower import lowering


@lowering("arange")
def emit_arange(k, node, out, ins, scratch) -> None:
    """out[i] = start + i * step for i in this thread's share."""
    b = k.b
    start, step = node.attrs["start"], node.attrs["step"]
    exact = isinstance(start, int) and isinstance(step, int)
    work = np.dtype(np.int64 if exact else np.float64)
    first, stop = k.split(out.size)
    with k.loop(first, stop, "i") as i:
        if exact:
            value = b.add(const(work, start), b.mul(i, const(work, step)))
        else:
            index = b.sitofp(i, F64)
            value = b.fadd(const(work, start), b.fmul(index, const(work, step)))
        k.store(convert(b, value, work, out.dtype), out.ptr, out.dtype, i)


