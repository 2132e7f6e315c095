"""Python's cyclic garbage collector paused over a compile's Python-heavy phases."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The cyclic collector off for a block: optimizing, planning and building the IR
    allocate sympy and llvmlite objects by the thousand, and each full collection they
    trigger walks every live object (lenet's optimization: 80 -> 34 ms CPU; a full
    collection in transformer_reverse's IR assembly took ~0.1 s). Cycles made meanwhile
    are collected later."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
