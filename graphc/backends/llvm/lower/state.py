"""attach_update: gc.compile replaces it by its value (graphc/ops/state.py), so a compiled
program never holds one; a program built without gc.compile reads it as a view of its
value."""

from __future__ import annotations

from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.shape import same_view

lowering("attach_update", kind="view", strided_view=same_view)(None)
