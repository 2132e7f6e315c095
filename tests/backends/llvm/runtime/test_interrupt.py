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

threads, handler = int(sys.argv[1]), sys.argv[2]
flags = []
if handler == "flag":  # a handler of the user's that does not raise
    signal.signal(signal.SIGINT, lambda signum, frame: flags.append(signum))
else:  # Python's own, which a process started with SIGINT ignored (a background job) lacks
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
times = []
for _ in range(3):  # the fastest of three: a loaded machine stretches some calls
    w.value = before.copy()
    started = time.perf_counter()
    step(data)
    times.append(time.perf_counter() - started)
full = min(times)
expected = w.value.copy()  # the params after one step from `before`
# A trial counts when the signal was sent while the call ran: on a loaded machine the
# timer's thread can be scheduled only after the call ended (nothing was then tested).
lock, running, sent = threading.Lock(), [False], []


def interrupt():
    with lock:
        if running[0]:
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)


outcome, stopped = "no trial had the signal sent during the call", None
for trial in range(5):
    w.value = before.copy()
    sent.clear()
    timer = threading.Timer(full / 4, interrupt)
    started = time.perf_counter()
    running[0] = True
    timer.start()
    try:
        try:
            step(data)
            result = "finished"
        finally:
            with lock:
                running[0] = False
    except KeyboardInterrupt:
        result = "interrupted"
    timer.cancel()
    if sent:
        outcome, stopped = result, time.perf_counter() - started
        break
unchanged = bool(np.array_equal(w.value, before))
stepped = bool(np.array_equal(w.value, expected))
after = step(data)[0]  # the next call works
print(json.dumps({"outcome": outcome, "full": full, "stopped": stopped,
                  "unchanged": unchanged, "stepped": stepped, "flags": len(flags),
                  "finite": bool(np.isfinite(after))}))
"""


def _child(threads: int, handler: str) -> dict:
    root = Path(__file__).resolve().parents[4]
    done = subprocess.run([sys.executable, "-c", CHILD, str(threads), handler], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_stops_a_long_call_promptly_with_params_untouched(threads):
    result = _child(threads, "default")
    assert result["outcome"] == "interrupted"
    assert result["unchanged"] and result["finite"]
    # Stopped at the next barrier after a quarter of the call, not at its end.
    assert result["stopped"] < 0.75 * result["full"], result


def test_a_handler_that_does_not_raise_gets_its_signal_and_the_call_completes():
    """The call stopped for Ctrl-C, the user's handler ran (it only records the signal),
    so the call ran again: one step's update, as without the interrupt."""
    result = _child(2, "flag")
    assert result["outcome"] == "finished" and result["flags"] == 1
    assert result["stepped"] and result["finite"]
