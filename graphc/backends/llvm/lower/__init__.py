"""The table from op name to LLVM lowering; importing this package fills it.

A lowering's kind is "kernel" (emits a kernel function), "view" (shares its input's buffer),
"projection" (shares the buffer of output attrs["index"] of its input, a multi-output
kernel) or "leaf" (its value is an argument). `emit(kernel, node, out, ins, scratch)` gets
`out` as one Operand, or a tuple of them for a multi-output kernel (fused_group).
`inplace`: the kernel reads each input only at the index it writes, so its output may
take the buffer of an equal-shaped input that dies with it. `reads_strided`: the operand
positions the kernel reads through strides (None: every one), so a transpose, slice or
reshape feeding them is a view, not a copy. `splits_own_work`: the kernel shares its work
among threads however small it is (never run on one thread alone). `ir_bytes`: roughly how
much IR it emits (convolutions: ~100 KB), by which compile workers are started early.
`error(node, value)` words a run-time error a kernel can report. `scratch(node, shapes)`
(shapes: the concrete shapes of the node's inputs, then its own) gives the bytes of arena
scratch the kernel needs while it runs.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
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
    reads_strided: tuple[int, ...] | None = ()
    splits_own_work: bool = False
    ir_bytes: int = 0

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
    """The filled table: every module of this package registers its lowerings."""
    _import_all()
    return TABLE


@functools.cache
def _import_all() -> None:
    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(info.name)
