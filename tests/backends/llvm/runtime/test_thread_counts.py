"""Results are bit-identical for any thread count (each element is computed by the same
code in the same order whichever thread runs it), and run-time errors surface as
ValueError with every thread stopping cleanly."""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import pytest

import graphc as gc


def _step(threads):
    rng = np.random.default_rng(0)
    w = gc.param("w", rng.normal(size=(3, 2, 3, 3)).astype(np.float32) * 0.3)
    table = gc.param("table", rng.normal(size=(50, 8)).astype(np.float32))
    v = gc.param("v", rng.normal(size=(3 * 15 * 15 + 8, 7)).astype(np.float32) * 0.1)
    x = gc.input("x", ("N", 2, 32, 32))
    ids = gc.input("ids", ("N",), "int64")
    labels = gc.input("labels", ("N",), "int64")
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, w, stride=1)), 2)
    h = gc.concat([gc.reshape(h, (h.shape[0], -1)), gc.embedding(ids, table)], axis=1)
    logits = gc.dropout(h, 0.2, seed=5) @ v
    loss = gc.softmax_cross_entropy(logits, labels) + gc.mean(gc.sum(h * h, axis=0))
    grads = gc.grad(loss, [w, table, v])
    params = [w, table, v]
    fn = gc.compile([x, ids, labels], [loss, logits, *grads], threads=threads,
                    updates={p: p - 0.05 * g for p, g in zip(params, grads)})
    return fn, params


def _run(threads):
    fn, params = _step(threads)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 2, 32, 32)).astype(np.float32)
    ids = rng.integers(0, 50, 40)
    labels = rng.integers(0, 7, 40)
    results = [fn(x, ids, labels) for _ in range(2)]
    return results, [p.value.copy() for p in params]


def test_identical_for_any_thread_count():
    reference, reference_params = _run(1)
    for threads in (2, 3, 4):
        results, params = _run(threads)
        for got, expected in zip(results, reference):
            for a, b in zip(got, expected):
                np.testing.assert_array_equal(a, b, err_msg=f"threads={threads}")
        for a, b in zip(params, reference_params):
            np.testing.assert_array_equal(a, b, err_msg=f"threads={threads}")


@pytest.mark.parametrize("threads", [1, 3])
def test_bad_id_raises_and_leaves_params_untouched(threads):
    table = gc.param("table", np.arange(12.0).reshape(6, 2))
    ids = gc.input("ids", (4,), "int64")
    picked = gc.argmax(gc.embedding(ids, table), axis=1) + ids  # ids computed natively too
    out = gc.sum(gc.embedding(picked, table))
    (g,) = gc.grad(out, [table])
    fn = gc.compile([ids], out, threads=threads, updates={table: table - g})
    before = table.value.copy()
    with pytest.raises(ValueError, match=r"embedding: id 6 is out of range \[0, 6\)"):
        fn(np.array([0, 1, 6, 2]))
    np.testing.assert_array_equal(table.value, before)
    with pytest.raises(ValueError, match=r"embedding: id 6 is out of range \[0, 6\)"):
        fn(np.array([0, 5, 2, 3]))  # 5 + argmax 1 = 6: an id computed by native code
    np.testing.assert_array_equal(table.value, before)
    expected = float(np.sum(before[[1, 2, 3, 4]]))
    assert float(fn(np.array([0, 1, 2, 3]))) == expected  # the function still works


def test_one_hot_label_out_of_range():
    labels = gc.input("labels", (3,), "int32")
    fn = gc.compile([labels], gc.one_hot(labels, 4))
    with pytest.raises(ValueError, match=r"one_hot: label -1 is out of range \[0, 4\)"):
        fn(np.array([0, -1, 2], np.int32))
    np.testing.assert_array_equal(fn(np.array([0, 3, 2], np.int32)), np.eye(4)[[0, 3, 2]])


@pytest.mark.parametrize("backend", ["llvm", "numpy"])
@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (2.0, TypeError),
                                        ("2", TypeError), (True, TypeError)])
def test_threads_must_be_a_positive_int_or_none(backend, bad, error):
    x = gc.input("x", (3,))
    with pytest.raises(error, match=r"threads: expected a positive int or None, got"):
        gc.compile([x], x * 2.0, backend=backend, threads=bad)


def test_threads_beyond_the_cpus_are_capped_with_a_warning(monkeypatch):
    """threads=1000 used to start 1000 worker threads (a call took seconds): it is capped
    at the CPUs the process may run on, with a warning."""
    monkeypatch.delenv("GRAPHC_MAX_THREADS", raising=False)
    cpus = len(os.sched_getaffinity(0))
    x = gc.input("x", (256, 256))
    with pytest.warns(UserWarning, match=rf"threads=1000 is capped at {cpus} "):
        f = gc.compile([x], gc.exp(x) @ x, threads=1000)
    assert f.options["threads"] == cpus
    before = threading.active_count()
    a = np.ones((256, 256), np.float32)
    np.testing.assert_allclose(f(a), np.exp(a) @ a, rtol=1e-5)
    assert threading.active_count() <= before + cpus
    monkeypatch.setenv("GRAPHC_MAX_THREADS", "3")  # an explicit bound (tests of odd splits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gc.compile([x], gc.exp(x) @ x, threads=3).options["threads"] == 3
