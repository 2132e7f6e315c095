"""The table from op name to LLVM lowering; importing this package fills it.

A lowering's kind is "kernel" (emits a kernel function), "view" (shares its input's buffer),
"projection" (shares the buffer of output attrs["index"] of its input, a multi-output
kernel) or "leaf" (its value is an argument). `emit(kernel, node, out, ins, scratch)` gets
`out` as one Operand, or a tuple of them for a multi-output kernel (fused_group).

The facts the planner and the schedule read (no op names are listed anywhere else):
- `inplace`: the kernel reads each input only at the index it writes, so its output may
  take the buffer of an equal-shaped input that dies with it.
- `reads_strided`: the operand positions the kernel reads through strides (None: every
  one), so a transpose, slice or reshape feeding them is a view, not a copy.
- `strided_view(node, base, source_shape, shape)`: on an op whose value can be read in
  place, the schedule.views.View of it within the buffer its input's view `base`
  describes (None: it cannot be; then a kernel computes it).
- `splits_own_work`: the kernel shares its work among threads however small it is (never
  run on one thread alone).
- `work(node, shapes)`: the work the serial rule (schedule/serial.py) weighs, in elements
  a plain kernel touches, where that is not the elements of the inputs and the output (a
  matmul's multiply-adds).
- `outputs(node)`: the dtypes of the values a multi-output kernel writes (default: one,
  node.dtype).
- `ir_bytes`: roughly how much IR it emits (convolutions: ~100 KB), by which compile
  workers are started early.
- `error(node, value)` words a run-time error a kernel can report.
- `scratch(node, shapes)` gives the bytes of arena scratch the kernel needs while it runs.
`shapes`, for `work` and `scratch`: the concrete shapes of the node's inputs, then its own.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TABLE: dict = {}


@dataclass(frozen=True)
class Lowering:
    emit: Callable | None
    kind: str = "kernel"
    inplace: bool = False
    error: Callable | None = None
    scratch: Callable | None = None
    reads_strided: tuple[int, ...] | None = ()
    strided_view: Callable | None = None
    splits_own_work: bool = False
    work: Callable | None = None
    outputs: Callable | None = None
    ir_bytes: int = 0

    @property
    def can_fail(self) -> bool:
        return self.error is not None

    def output_dtypes(self, node) -> list[np.dtype]:
        """The dtype of each value the kernel writes: one, or a multi-output kernel's."""
        return [node.dtype] if self.outputs is None else list(self.outputs(node))


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
