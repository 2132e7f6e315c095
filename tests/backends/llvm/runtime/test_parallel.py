"""Parallel compilation (parallel.py, objgen.py, partition.split_kernels): a big module is
split into parts compiled by worker processes and in-process, and linked into one engine.
The split build must compute the bits the one-module build computes, a failing worker
must change nothing but the time, and no worker may outlive the compile."""

from __future__ import annotations

import re
import textwrap
import threading

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.runtime import objgen, parallel, partition, target


@pytest.fixture
def no_cache(monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "0")


@pytest.fixture
def forced(monkeypatch):
    """Every module split and compiled with two workers (unless GRAPHC_PARALLEL_COMPILE=0),
    whatever its size and the machine's CPU count; yields the workers started (to check
    they were all reaped)."""
    monkeypatch.setattr(parallel, "workers_for",
                        lambda whole, divisible: 2 if parallel.enabled() else 0)
    monkeypatch.delenv("GRAPHC_PARALLEL_COMPILE", raising=False)
    started: list[parallel._Worker] = []
    init = parallel._Worker.__init__

    def spy(self, *args):
        init(self, *args)
        started.append(self)

    monkeypatch.setattr(parallel._Worker, "__init__", spy)
    yield started
    assert all(w.process.returncode is not None for w in started)  # reaped: no zombies


def _cnn(threads: int, seed: int = 0):
    """A LeNet-like training step (conv, pool, GEMMs, bias, relu, cross-entropy)."""
    rng = np.random.default_rng(seed)
    x = gc.input("x", (6, 1, 12, 12))
    y = gc.input("y", (6,), "int32")
    params = [gc.param("c1", rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32)),
              gc.param("b1", rng.normal(0, 0.1, 4).astype(np.float32)),
              gc.param("c2", rng.normal(0, 0.3, (6, 4, 3, 3)).astype(np.float32)),
              gc.param("w", rng.normal(0, 0.2, (24, 10)).astype(np.float32)),
              gc.param("b", np.zeros(10, np.float32))]
    c1, b1, c2, w, b = params
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, c1, b1, padding=1)), 2)
    h = gc.max_pool2d(gc.relu(gc.conv2d(h, c2)), 2)
    loss = gc.softmax_cross_entropy(gc.reshape(h, (6, -1)) @ w + b, y)
    grads = gc.grad(loss, params)
    step = gc.compile([x, y], [loss], updates={p: p - 0.1 * g for p, g in zip(params, grads)},
                      threads=threads)
    data = (rng.normal(size=(6, 1, 12, 12)).astype(np.float32),
            np.array([0, 1, 4, 2, 9, 3], np.int32))
    losses = [step(*data)[0] for _ in range(3)]
    return losses + [p.value.copy() for p in params]


def _assert_same_bits(expected: list, got: list) -> None:
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


@pytest.mark.parametrize("threads", [1, 2])
def test_split_build_computes_the_bits_of_one_module(no_cache, monkeypatch, forced, threads):
    monkeypatch.setenv("GRAPHC_PARALLEL_COMPILE", "0")
    expected = _cnn(threads)
    assert not forced
    compiled = []
    real = parallel._Worker.compile
    monkeypatch.setattr(parallel._Worker, "compile",
                        lambda self, text: compiled.append(real(self, text)) or compiled[-1])
    monkeypatch.delenv("GRAPHC_PARALLEL_COMPILE")
    _assert_same_bits(expected, _cnn(threads))
    assert forced and compiled and all(compiled)  # workers did compile parts


def test_a_worker_emits_the_object_compiled_in_process():
    text = partition.split_kernels(_own_module(), 3)[1]
    worker = parallel._Worker()
    try:
        assert worker.compile(text) == target.compile_object(text)
    finally:
        worker.close()
    assert worker.process.returncode is not None


FAKE_WORKERS = {
    "exits": "import sys; sys.exit(3)",
    "garbage": """
        import sys
        sys.stdin.buffer.read(8)
        sys.stdout.buffer.write(b"\\x10" + b"\\0" * 7 + b"x" * 32 + b"not an object!!!")
        sys.stdout.buffer.flush()
        sys.stdin.buffer.read()
    """,
    "truncated": """
        import sys
        sys.stdin.buffer.read(8)
        sys.stdout.buffer.write(b"\\xff" + b"\\0" * 7 + b"x" * 32 + b"short")
    """,
    "claims 16 EiB": """
        import sys
        sys.stdin.buffer.read(8)
        sys.stdout.buffer.write(b"\\xff" * 8 + b"x" * 32)
        sys.stdout.buffer.flush()
        sys.stdin.buffer.read()
    """,
    "hangs": "import time; time.sleep(120)",
}


@pytest.mark.parametrize("fault", sorted(FAKE_WORKERS))
def test_a_failing_worker_leaves_its_modules_to_this_process(no_cache, monkeypatch, tmp_path,
                                                             forced, fault):
    monkeypatch.setenv("GRAPHC_PARALLEL_COMPILE", "0")
    expected = _cnn(1, seed=2)
    monkeypatch.delenv("GRAPHC_PARALLEL_COMPILE")
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(FAKE_WORKERS[fault]))
    monkeypatch.setattr(parallel, "_OBJGEN", str(script))
    monkeypatch.setattr(parallel, "TIMEOUT", 1.0)
    _assert_same_bits(expected, _cnn(1, seed=2))
    assert forced


def test_a_worker_that_cannot_start_changes_nothing(no_cache, monkeypatch, forced):
    monkeypatch.setenv("GRAPHC_PARALLEL_COMPILE", "0")
    expected = _cnn(2, seed=3)
    monkeypatch.delenv("GRAPHC_PARALLEL_COMPILE")
    for executable in ("/nonexistent/python", ""):
        monkeypatch.setattr(parallel.sys, "executable", executable)
        _assert_same_bits(expected, _cnn(2, seed=3))


def test_an_invalid_module_raises_as_in_process(forced):
    with pytest.raises(RuntimeError):
        parallel.compile_all(["define i32 @f() {\n  ret i64 0\n}", "not IR"], workers=2)


def test_a_split_build_is_stored_and_loaded_like_any_other(monkeypatch, tmp_path, forced):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    compiled = _cnn(1, seed=4)
    assert forced
    started = len(forced)
    _assert_same_bits(compiled, _cnn(1, seed=4))  # loaded: nothing compiled
    assert len(forced) == started


def test_workers_only_where_they_save_more_time_than_their_start(monkeypatch):
    monkeypatch.delenv("GRAPHC_PARALLEL_COMPILE", raising=False)
    monkeypatch.setattr(parallel, "cpu_count", lambda: 2)
    start = parallel.START
    assert parallel.workers_for([], 0.01) == 0  # the many tiny programs of the tests
    assert parallel.workers_for([], 2 * start) == 0  # halves save less than a start
    assert parallel.workers_for([], 4 * start) == 1
    assert parallel.workers_for([0.4], 0.05) == 0  # the library alone is the critical path
    assert parallel.workers_for([0.4], 0.7) == 1  # lenet's cold compile
    monkeypatch.setattr(parallel, "cpu_count", lambda: 8)
    assert parallel.workers_for([], 100 * start) == 7  # at most one per spare CPU
    assert parallel.workers_for([], 6 * start) == 1  # a second worker would save less
    monkeypatch.setattr(parallel, "cpu_count", lambda: 1)
    assert parallel.workers_for([], 100 * start) == 0
    monkeypatch.setattr(parallel, "cpu_count", lambda: 8)
    monkeypatch.setenv("GRAPHC_PARALLEL_COMPILE", "0")
    assert parallel.workers_for([], 100 * start) == 0


def test_split_kernels_defines_each_global_once_and_keeps_constants_local():
    text = _own_module()
    parts = partition.split_kernels(text, 3)
    assert len(parts) == 3
    whole = set(re.findall(r'^define [^@]*@"(k\d+_\w+)"', text, re.M))
    bodies = [set(re.findall(r'^define internal [^@]*@"(k\d+_\w+)\.body"', p, re.M))
              | set(re.findall(r'^define internal [^@]*@"(k\d+_\w+)"\(', p, re.M))
              for p in parts]
    assert set().union(*bodies) == whole and sum(map(len, bodies)) == len(whole)
    for name in ("gc_error_code", "gc_error_value", "gc_barrier_count"):
        definitions = [p for p in parts if re.search(rf'^@"{name}" = global ', p, re.M)]
        assert definitions == [parts[0]]
        for p in parts[1:]:
            assert not re.search(rf'^@"{name}" = (internal )?global', p, re.M)
    assert 'define i32 @"graphc_entry"' in parts[0]
    # A serial kernel keeps its constant thread arguments: its stub passes them.
    stubs = re.findall(r'call void @"k\d+_\w+\.body"\((.*)\)', "".join(parts[1:]))
    assert any(", i64 0, i64 1, " in args for args in stubs)
    assert partition.split_kernels(text, 1) == [text]


def _own_module() -> str:
    """The program's own IR of a small conv net's training step."""
    rng = np.random.default_rng(0)
    x = gc.input("x", (8, 2, 10, 10))
    y = gc.input("y", (8,), "int32")
    k = gc.param("k", rng.normal(0, 0.3, (4, 2, 3, 3)).astype(np.float32))
    w = gc.param("w", rng.normal(0, 0.3, (64, 3)).astype(np.float32))
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, k)), 2)
    loss = gc.softmax_cross_entropy(gc.reshape(h, (8, -1)) @ w, y)
    gk, gw = gc.grad(loss, [k, w])
    step = gc.compile([x, y], [loss], updates={k: k - 0.1 * gk, w: w - 0.1 * gw})
    own, _ = partition.split_shared(step.compiled().ir)
    return own


def test_the_worker_entry_point_imports_llvmlite_alone():
    source = open(objgen.__file__).read()
    imports = re.findall(r"^(?:import|from) (\S+)", source, re.M)
    assert set(imports) <= {"__future__", "hashlib", "struct", "sys", "llvmlite.binding"}


def test_workers_started_early_are_reaped_whether_used_or_not(monkeypatch):
    monkeypatch.delenv("GRAPHC_PARALLEL_COMPILE", raising=False)
    monkeypatch.setattr(parallel, "cpu_count", lambda: 3)
    with parallel.started(2) as unused:
        assert len(unused) == 2
    assert all(w.process.returncode is not None for w in unused)
    texts = partition.split_kernels(_own_module(), 3)
    with parallel.started(1) as ready:
        objects = parallel.compile_all(texts, 1, ready)
        assert ready[0].process.returncode is not None
    assert objects == [target.compile_object(text) for text in texts]
    monkeypatch.setenv("GRAPHC_PARALLEL_COMPILE", "0")
    with parallel.started(2) as none:
        assert none == []


def test_a_worker_compiles_what_is_submitted_before_the_objects_are_asked_for(monkeypatch):
    monkeypatch.delenv("GRAPHC_PARALLEL_COMPILE", raising=False)
    texts = partition.split_kernels(_own_module(), 3)
    taken = threading.Event()
    real = parallel._Worker.compile

    def spy(self, text):
        taken.set()
        return real(self, text)

    monkeypatch.setattr(parallel._Worker, "compile", spy)
    with parallel.started(1) as ready:
        with parallel.Compiler(1, ready) as compiler:
            compiler.submit(texts[0])
            assert taken.wait(60)  # taken while the caller has not asked for anything
            for text in texts[1:]:
                compiler.submit(text)
            objects = compiler.objects()
            with pytest.raises(RuntimeError, match="after the objects"):
                compiler.submit(texts[0])
        assert ready[0].process.returncode is not None
    assert objects == [target.compile_object(text) for text in texts]


def test_a_compiler_left_early_reaps_its_workers(monkeypatch):
    monkeypatch.delenv("GRAPHC_PARALLEL_COMPILE", raising=False)
    started: list[parallel._Worker] = []
    init = parallel._Worker.__init__
    monkeypatch.setattr(parallel._Worker, "__init__",
                        lambda self, *args: init(self, *args) or started.append(self))
    with pytest.raises(KeyError), parallel.Compiler(2) as compiler:
        compiler.submit(_own_module())
        raise KeyError("the caller failed before asking for the objects")
    assert len(started) == 2 and all(w.process.returncode is not None for w in started)


def test_an_error_raised_in_another_part_reaches_the_entry(no_cache, monkeypatch, forced):
    parts: list[list[str]] = []
    real = partition.split_kernels
    # A part per kernel: the label check is certainly not in the entry's part.
    monkeypatch.setattr(partition, "split_kernels",
                        lambda text, n: parts.append(real(text, 1000)) or parts[-1])
    rng = np.random.default_rng(5)
    x = gc.input("x", (4, 1, 8, 8))
    y = gc.input("y", (4,), "int32")
    k = gc.param("k", rng.normal(0, 0.3, (3, 1, 3, 3)).astype(np.float32))
    w = gc.param("w", rng.normal(0, 0.3, (27, 5)).astype(np.float32))
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, k, padding=1)), 2)
    loss = gc.softmax_cross_entropy(gc.reshape(h, (4, -1))[:, :27] @ w, y)
    gk, gw = gc.grad(loss, [k, w])
    step = gc.compile([x, y], [loss], updates={k: k - 0.1 * gk, w: w - 0.1 * gw})
    data = rng.normal(size=(4, 1, 8, 8)).astype(np.float32)
    before = k.value.copy(), w.value.copy()
    with pytest.raises(ValueError, match="5"):
        step(data, np.array([0, 1, 5, 2], np.int32))  # a label out of range
    (split,) = parts
    checking = [p for p in split if re.search(r'define internal void @"k\d+_one_hot\.body"', p)]
    assert checking and checking[0] is not split[0]  # the check is not in the entry's part
    np.testing.assert_array_equal(k.value, before[0])
    np.testing.assert_array_equal(w.value, before[1])
    (good,) = step(data, np.array([0, 1, 4, 2], np.int32))
    assert np.isfinite(good)
