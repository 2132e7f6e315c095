"""output_part: a view of one output of a multi-output kernel (schedule/plan.py gives
each output its own storage)."""

from __future__ import annotations

from graphc.backends.llvm.lower import lowering

lowering("output_part", kind="projection")(None)
