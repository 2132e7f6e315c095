"""Ctrl-C during a native call: the call stops at its next barrier before any param is
written, and the KeyboardInterrupt reaches the user then, not when the call would have
ended.

A native call holds the main thread, so Python's own SIGINT handler only runs after it.
But CPython's C-level handler writes the signal's number to the wakeup fd
(signal.set_wakeup_fd) the moment the signal arrives: while a call runs, that fd is a pipe
read by a watcher thread, which sets CELL; the schedule's barriers before the first param
write read CELL (codegen/module.py) and stop every thread together with the CANCELLED
error. Python's handler for the signal is then pending: `deliver` lets it run (the
default one raises KeyboardInterrupt, once); if it does not raise (a handler of the
user's that sets a flag, say), the call is run again, as if nothing had stopped it. A
signal arriving after the last such barrier lets the call finish (params fully updated)
and its handler runs after it. Calls from other threads than the main one (which cannot
set the wakeup fd) run to their end, as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
from collections.abc import Iterator

CELL = ctypes.c_int32(0)  # set when an interrupt arrived during a call
CELL_ADDRESS = ctypes.addressof(CELL)

_lock = threading.Lock()
_active = [False]  # a call is running (CELL may be set); changed under _lock
_pipe: tuple[int, int] | None = None
_forward = [-1]  # the wakeup fd that was set before ours (asyncio's, say): signals go on to it


def _watch(read_end: int) -> None:
    """The watcher thread: each signal number read sets CELL on SIGINT and is passed on
    to the wakeup fd that was there before."""
    while True:
        try:
            data = os.read(read_end, 64)
        except OSError:
            return
        if not data:
            return
        if signal.SIGINT in data:
            with _lock:  # never set after the call ended (it would stop the next one)
                if _active[0]:
                    CELL.value = 1
        target = _forward[0]
        if target >= 0 and _pipe is not None and target != _pipe[1]:
            with contextlib.suppress(OSError):
                os.write(target, data)


def _started() -> int:
    """The write end of the watcher's pipe (the watcher started on first use)."""
    global _pipe
    with _lock:
        if _pipe is None:
            read_end, write_end = os.pipe()
            os.set_blocking(write_end, False)
            threading.Thread(target=_watch, args=(read_end,), daemon=True,
                             name="graphc-interrupt").start()
            _pipe = (read_end, write_end)
        return _pipe[1]


@contextlib.contextmanager
def watching() -> Iterator[None]:
    """Around a native call: an interrupt sets CELL (main thread only); CELL is clear
    when the block ends."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "set_wakeup_fd"):
        yield
        return
    ours = _started()
    try:
        before = signal.set_wakeup_fd(ours, warn_on_full_buffer=False)
    except (ValueError, OSError):  # not allowed here: the call runs to its end
        yield
        return
    # Ours still, when an interrupt cut a call's cleanup short: never forward to ourselves.
    _forward[0] = -1 if before == ours else before
    try:
        with _lock:
            _active[0] = True
        yield
    finally:
        # A Python signal handler may raise between any two of these lines: each runs
        # whatever the one before it raised.
        try:
            with _lock:
                _active[0] = False
                CELL.value = 0
        finally:
            try:
                signal.set_wakeup_fd(_forward[0])
            finally:
                _forward[0] = -1


def deliver() -> None:
    """Run the signal handlers pending since a call began: the eval loop runs them when a
    Python function starts. What they raise (KeyboardInterrupt) propagates from here."""
    for _ in range(2):
        _checkpoint()


def _checkpoint() -> None:
    """A Python function: entering it runs pending signal handlers."""
