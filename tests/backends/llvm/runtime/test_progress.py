"""The compile progress line (runtime/progress.py): shown on a terminal once a compile
takes longer than AFTER, with the time at the end; never in a log (not a terminal) and
never for a quick compile."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.runtime import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream,after,shown", [(Terminal, 0.0, True), (Terminal, 60.0, False),
                                                (io.StringIO, 0.0, False)])
def test_the_line_appears_only_on_a_terminal_after_a_while(monkeypatch, stream, after, shown):
    out = stream()
    monkeypatch.setattr("sys.stderr", out)
    with progress.compiling("3 kernels", after=after):
        time.sleep(0.05)
    text = out.getvalue()
    assert ("graphc: compiling 3 kernels ...\r" in text) == shown
    assert ("graphc: compiled 3 kernels in " in text) == shown


def test_a_compile_names_its_kernels_and_binding(monkeypatch):
    out = Terminal()
    monkeypatch.setattr("sys.stderr", out)
    monkeypatch.setattr(progress, "AFTER", 0.0)
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    x = gc.input("x", ("N", 5))
    f = gc.compile([x], gc.exp(x) @ gc.transpose(x))
    f(np.ones((3, 5), np.float32))
    assert "graphc: compiled 2 kernels for N=3 in " in out.getvalue()
