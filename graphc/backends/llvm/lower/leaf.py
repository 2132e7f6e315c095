"""Leaves: inputs, params and constants are arguments; dim_value stores the bound size."""

from __future__ import annotations

from graphc.backends.llvm.codegen.irtypes import const, i64
from graphc.backends.llvm.lower import lowering
from graphc.shapes import evaluate_dim

lowering("input", "param", "constant", kind="leaf")(None)


@lowering("dim_value")
def emit_dim_value(k, node, out, ins, scratch) -> None:
    value = evaluate_dim(node.attrs["dim"], k.binding)
    with k.when(k.first_thread()):
        k.store(const(out.dtype, value), out.ptr, out.dtype, i64(0))
