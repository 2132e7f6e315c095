"""Compile time grows linearly with the program (issue 13, item 11): the stages between
the optimizer and LLVM, timed on programs of n and 8n ops, take about 8 times as long
(a stage quadratic in the program, as planning and splitting were, takes 64 times);
steps that compute the same way share one kernel function; a long schedule is cut into
segments (LLVM is superlinear in a function's length); a 20,000-node chain compiles in
under 30 s."""

from __future__ import annotations

import gc as python_gc
import re
import time

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm import module
from graphc.backends.llvm.lower import table
from graphc.backends.llvm.module import split_kernels
from graphc.backends.llvm.plan import make_plan
from graphc.ir.graph import Graph
from graphc.ir.program import Program
from tests.backends_available import BACKENDS

pytestmark = pytest.mark.skipif("llvm" not in BACKENDS, reason="needs the LLVM backend")

GROWTH = 8  # the bigger input of a comparison is this many times the smaller
LINEAR = 24  # the most the bigger may cost, in multiples of the smaller (quadratic: 64)


def cpu_seconds(work) -> float:
    """The CPU time of one run of work() (CPU time: other processes on the machine do not
    count), the garbage collector paused (its passes cost more the more objects live,
    whatever the code measured does)."""
    python_gc.collect()
    python_gc.disable()
    try:
        start = time.process_time()
        work()
        return time.process_time() - start
    finally:
        python_gc.enable()


def grows_linearly(make_input, run, n: int, repeat: int = 5) -> tuple[bool, float]:
    """Whether run(make_input(GROWTH * n)) costs at most LINEAR times run(make_input(n)),
    and the ratio (of the least times of `repeat` interleaved runs of each)."""
    small, big = make_input(n), make_input(GROWTH * n)
    smalls, bigs = [], []
    for _ in range(repeat):
        smalls.append(max(cpu_seconds(lambda: run(small)), 1e-3))
        bigs.append(cpu_seconds(lambda: run(big)))
        if min(bigs) > 2 * LINEAR * min(smalls):  # plainly superlinear: no need to wait
            break
    ratio = min(bigs) / min(smalls)
    return ratio < LINEAR, ratio


def chain(steps: int) -> tuple[gc.Node, gc.Node]:
    """(x, h): h = tanh(h) * 0.9 + 0.01 applied `steps` times (3 nodes a step)."""
    x = gc.input("x", (4, 8), "float32")
    h = x
    for _ in range(steps):
        h = gc.tanh(h) * 0.9 + 0.01
    return x, h


def unoptimized_chain(steps: int) -> Program:
    """A program of 3 * steps kernels (unoptimized: one kernel per op)."""
    x, h = chain(steps)
    return Program((x,), (h,), ())


def kernel_module(kernels: int) -> str:
    """IR text as module.assemble prints it: `kernels` kernel functions and an entry that
    calls each."""
    head = ['; ModuleID = "graphc"', 'target triple = "unknown-unknown-unknown"',
            'target datalayout = ""', "",
            '@"gc_error_code" = internal global i32 0, align 64']
    bodies = [f'define internal void @"k{k}_add"(ptr %".1", i64 %".2", i64 %".3", i64 %".4")'
              f'\n{{\nentry:\n  ret void\n}}' for k in range(kernels)]
    calls = [f'  call void @"k{k}_add"(ptr %".1", i64 0, i64 1, i64 %".5")'
             for k in range(kernels)]
    entry = ['define i32 @"graphc_entry"(ptr noalias %".1", ptr noalias %".2", i64 %".3", '
             'i64 %".4", i64 %".5")', "{", "entry:", *calls, "  ret i32 0", "}"]
    return "\n".join(head + bodies + entry)


def test_planning_takes_time_linear_in_the_program():
    """make_plan merged buffers by scanning every value and step: 3,000 kernels took 11 s."""
    ok, ratio = grows_linearly(unoptimized_chain, lambda p: make_plan(p, {}, table()), 250)
    assert ok, f"planning {GROWTH} times the kernels took {ratio:.1f} times as long"


def test_splitting_a_module_takes_time_linear_in_its_kernels():
    """split_kernels scanned every body for the calls of each kernel it stubs: 2,700
    kernels took 85 s."""
    ok, ratio = grows_linearly(kernel_module, lambda text: split_kernels(text, 6), 500)
    assert ok, f"splitting {GROWTH} times the kernels took {ratio:.1f} times as long"


def test_a_graph_with_a_much_read_value_takes_time_linear_in_its_nodes():
    """Graph deduplicated each value's consumers by a list search: the constants of a
    chain, read by every step, made it quadratic."""
    ok, ratio = grows_linearly(lambda n: chain(n)[1], lambda h: Graph([h]), 1500)
    assert ok, f"a graph of {GROWTH} times the nodes took {ratio:.1f} times as long"


X = np.linspace(-2, 2, 32, dtype=np.float32).reshape(4, 8)


def reference(h: gc.Node, x: gc.Node) -> np.ndarray:
    return gc.compile([x], h, backend="numpy", optimize=False)(X)


def kernel_functions(ir_text: str) -> list[str]:
    return re.findall(r'^define internal void @"(k\d+_\w+)"', ir_text, re.M)


def test_equal_steps_share_one_kernel_function():
    """300 unoptimized steps of three kinds: a handful of kernel functions (one per op
    and buffer sharing), emitted and optimized once each, not 300."""
    x, h = chain(100)
    f = gc.compile([x], h, optimize=False)
    np.testing.assert_allclose(f(X), reference(h, x), rtol=1e-5, atol=1e-6)
    kernels = kernel_functions(f._runner.last.ir)
    assert {k.split("_", 1)[1] for k in kernels} == {"tanh", "mul", "add"}
    assert len(kernels) <= 6, kernels


@pytest.mark.parametrize("threads", [1, 2])
def test_a_long_schedule_runs_as_segments(monkeypatch, threads):
    """A schedule longer than SEGMENT_STEPS is cut into functions the entry calls in turn;
    results, an error raised by a kernel in a segment, and profiles are as before."""
    monkeypatch.setattr(module, "SEGMENT_STEPS", 40)
    x, h = chain(60)
    ids = gc.input("ids", (3,), "int32")
    rows = gc.embedding(ids, h)  # can fail: an id out of range
    f = gc.compile([x, ids], [h, rows], optimize=False, threads=threads)
    good = np.array([0, 3, 1], np.int32)
    out, picked = f(X, good)
    np.testing.assert_allclose(out, reference(h, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(picked, out[good])
    ir_text = f._runner.last.ir
    segments = re.findall(r'^define internal i32 @"(s\d+_segment)"', ir_text, re.M)
    assert len(segments) >= 181 // 40
    for name in segments:
        body = ir_text[ir_text.index(f'@"{name}"('):]
        body = body[:body.index("\n}\n")]
        assert len(re.findall(r'call void @"k\d+_', body)) <= 40
    with pytest.raises(ValueError, match="out of range"):
        f(X, np.array([0, 9, 1], np.int32))
    np.testing.assert_array_equal(f(X, good)[1], picked)  # and it runs on after the error
    profile = f.profile(X, good, calls=2)
    assert len(profile.kernels) == 181 and all(k.seconds >= 0 for k in profile.kernels)


def compile_seconds(optimize: bool, steps: int = 6667) -> float:
    """CPU seconds of compiling and first calling a chain of 3 * steps + 1 nodes, checked
    against the reference."""
    x, h = chain(steps)
    start = time.process_time()
    out = gc.compile([x], h, optimize=optimize)(X)
    seconds = time.process_time() - start
    np.testing.assert_allclose(out, reference(h, x), rtol=1e-4, atol=1e-5)
    return seconds


@pytest.mark.parametrize("optimize", [
    pytest.param(True, id="optimized"),
    pytest.param(False, id="unoptimized", marks=pytest.mark.slow)])
def test_a_20000_node_chain_compiles_in_under_30_seconds(monkeypatch, optimize):
    """In CPU time, compiled in this process (GRAPHC_PARALLEL_COMPILE=0), so that the
    machine's other work does not count: 8 s optimized, 11 s unoptimized, measured."""
    monkeypatch.setenv("GRAPHC_PARALLEL_COMPILE", "0")
    seconds = compile_seconds(optimize)
    assert seconds < 30, f"compiled in {seconds:.1f} s of CPU"
