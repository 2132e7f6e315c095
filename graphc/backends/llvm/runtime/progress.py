"""A line on the terminal while a compile takes long: users see that graphc is compiling,
not hanging, and how long it took. Nothing is printed when stderr is not a terminal (a
log file gets no carriage returns) or when the compile ends within AFTER seconds."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator

AFTER = 1.0  # seconds a compile runs before its line appears
_quiet = threading.local()  # set on a thread whose compiles nobody waits for


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """No line for compiles on this thread within the block (a tiered function's
    background compile: the calls go on meanwhile, nothing looks hung)."""
    before = getattr(_quiet, "on", False)
    _quiet.on = True
    try:
        yield
    finally:
        _quiet.on = before


@contextlib.contextmanager
def compiling(what: str, after: float | None = None) -> Iterator[None]:
    """Around a compile of `what` (e.g. "12 kernels, N=64"): after `after` seconds
    (default AFTER) on a terminal, "graphc: compiling ...", and when it ends the time."""
    stream = sys.stderr
    if stream is None or not stream.isatty() or getattr(_quiet, "on", False):
        yield
        return
    started = time.perf_counter()
    shown = threading.Event()

    def show() -> None:
        shown.set()
        stream.write(f"graphc: compiling {what} ...\r")
        stream.flush()

    timer = threading.Timer(AFTER if after is None else after, show)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        if shown.is_set():
            stream.write(f"graphc: compiled {what} in {time.perf_counter() - started:.1f} s\n")
            stream.flush()
