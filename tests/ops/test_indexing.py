"""take (NumPy's), index_select, one_hot's ignore_index and masked_fill against NumPy and
PyTorch, call-time checks of their indices on both backends, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc as gc
from tests.ops.oracle import BACKENDS, agree_with_torch, both_backends

A = np.random.default_rng(6).normal(size=(3, 4))


def test_take_follows_numpy():
    x = gc.input("x", A.shape, "float64")
    cases = [(np.array([[0, -1], [5, 11]]), None), (np.array([3, -4, 0]), 1), (np.array(2), 0)]
    outs = [gc.take(x, gc.constant(i), axis=a) for i, a in cases]
    for got in both_backends([x], outs, A):
        for g, (i, a) in zip(got, cases):
            np.testing.assert_array_equal(g, np.take(A, i, axis=a))


def test_index_select_and_masked_fill_follow_torch():
    agree_with_torch(lambda x, i: gc.index_select(x, 1, i),
                     lambda x, i: torch.index_select(x, 1, i), [A, np.array([3, 0, 3])])
    mask = np.array([[True, False, False, True], [False, False, True, True]])[:, None, :]
    agree_with_torch(lambda x, m: gc.masked_fill(x, m, 0.5), lambda x, m: x.masked_fill(m, 0.5),
                     [A, mask])  # a mask of more axes broadcasts the result, as in PyTorch


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_one_hot_gives_zeros_for_ignore_index_and_still_checks_the_rest(backend, ignore_index):
    labels = gc.input("labels", (4,), "int32")
    fn = gc.compile([labels], gc.one_hot(labels, 3, ignore_index=ignore_index),
                    backend=backend)
    got = fn(np.array([0, ignore_index, 1, ignore_index], np.int32))
    np.testing.assert_array_equal(got, [[1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match=r"one_hot: label 3 is out of range \[0, 3\)"):
        fn(np.array([0, ignore_index, 3, 1], np.int32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_select_checks_its_index_at_call_time(backend):
    x = gc.input("x", A.shape, "float64")
    i = gc.input("i", (2,), "int64")
    fn = gc.compile([x, i], gc.index_select(x, 0, i), backend=backend)
    with pytest.raises(ValueError, match=r"index_select: id -1 is out of range \[0, 3\) "
                                         r"\(at .*test_indexing.py"):
        fn(A, np.array([0, -1]))


@pytest.mark.parametrize("build,message", [
    (lambda x: gc.take(x, gc.constant([0.0])), "take: index must be int32 or int64"),
    (lambda x: gc.take(x, [12]), "take: index 12 is out of bounds for axis 0 with size 12"),
    (lambda x: gc.take(x, [0], axis=2), "take: axis: axis 2 is out of range"),
    (lambda x: gc.index_select(x, 0, gc.constant([[0]])), r"index_select: index must be 1-D"),
    (lambda x: gc.index_select(x, index=gc.constant([0])), r"index_select: needs dim="),
    (lambda x: gc.masked_fill(x, x, 0.0), "masked_fill: mask must be bool"),
    (lambda x: gc.masked_fill(x, gc.constant([True, False]), 0.0),
     "masked_fill: shapes .* do not broadcast"),
    (lambda x: gc.masked_fill(x, gc.constant([True] * 4), x), "masked_fill: value must be a "
                                                              "scalar"),
])
def test_bad_arguments_are_refused_at_build_time(build, message):
    x = gc.input("x", A.shape, "float64")
    with pytest.raises((gc.GraphError, gc.GraphTypeError),
                       match=message + r".*test_indexing.py"):
        build(x)
