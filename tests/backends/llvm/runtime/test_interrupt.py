"""Ctrl-C during a long native call (runtime/interrupt.py): the call stops at its next
barrier before any param is written, the KeyboardInterrupt arrives promptly, params keep
their values, and the next call works. Run in a child process: an interrupt in the test
process would end the test session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends_available import BACKENDS

pytestmark = pytest.mark.skipif("llvm" not in BACKENDS, reason="needs the LLVM backend")

CHILD = r"""
import json, os, signal, sys, threading, time
import numpy as np
import graphc as gc

threads = int(sys.argv[1])
x = gc.input("x", (512, 512))
w = gc.param("w", np.full((512, 512), 0.001, np.float32))
h = x
for _ in range(24):  # a chain of matmuls: many barriers before the update
    h = gc.tanh(h @ w)
loss = gc.sum(h)
(gw,) = gc.grad(loss, [w])
step = gc.compile([x], [loss], updates={w: w - 0.01 * gw}, threads=threads)
data = np.ones((512, 512), np.float32)
step(data)  # compiled, warm
before = w.value.copy()
started = time.perf_counter()
step(data)
full = time.perf_counter() - started
w.value = before.copy()
timer = threading.Timer(full / 4, lambda: os.kill(os.getpid(), signal.SIGINT))
started = time.perf_counter()
timer.start()
try:
    step(data)
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "interrupted"
stopped = time.perf_counter() - started
unchanged = bool(np.array_equal(w.value, before))
after = step(data)[0]  # the next call works
print(json.dumps({"outcome": outcome, "full": full, "stopped": stopped,
                  "unchanged": unchanged, "finite": bool(np.isfinite(after))}))
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_stops_a_long_call_promptly_with_params_untouched(threads):
    root = Path(__file__).resolve().parents[4]
    done = subprocess.run([sys.executable, "-c", CHILD, str(threads)], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "interrupted"
    assert result["unchanged"] and result["finite"]
    # Stopped at the next barrier after a quarter of the call, not at its end.
    assert result["stopped"] < 0.75 * result["full"], result
