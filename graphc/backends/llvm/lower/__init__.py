"""The table from op name to LLVM lowering; importing this package fills it.

A lowering's kind is "kernel" (emits a kernel function), "view" (shares its input's buffer),
"projection" (shares the buffer of output attrs["index"] of its input, a multi-output
kernel) or "leaf" (its value is an argument). `emit(kernel, node, out, ins, scratch)` gets
`out` as one Operand, or a tuple of them for a multi-output kernel (fused_group).
`inplace`: the kernel reads each input only at the index it writes, so its output may
take the buffer of an equal-shaped input that dies with it. `error(node, value)` words a
run-time error a kernel can report. `scratch(node, shapes)` (shapes: the concrete shapes
of the node's inputs, then its own) gives the bytes of arena scratch the kernel needs
while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

TABLE: dict = {}


@dataclass(frozen=True)
class Lowering:
    emit: Callable | None
    kind: str = "kernel"
    inplace: bool = False
    error: Callable | None = None
    scratch: Callable | None = None

    @property
    def can_fail(self) -> bool:
        return self.error is not None


def lowering(*names: str, **options):
    """Register the decorated emit(kernel, node, out, ins, scratch) for these ops."""
    def register(emit):
        for name in names:
            if name in TABLE:
                raise ValueError(f"op {name} has two LLVM lowerings")
            TABLE[name] = Lowering(emit, **options)
        return emit
    return register


def table() -> dict:
    from graphc.backends.llvm.lower import (  # noqa: F401  (each module registers its ops)
        checks,
        conv,
        conv_grad_weight,
        elementwise,
        fused,
        indexing,
        leaf,
        linalg,
        pool,
        random,
        reduction,
        shape,
    )
    return TABLE
