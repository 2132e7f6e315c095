"""gather, take_along_axis, scatter, scatter_add and scatter_reduce against PyTorch (values
and gradients, zeros and ties included), duplicate indices, and bad indices and arguments
on both backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc as gc
from tests.ops.oracle import BACKENDS, agree_with_torch

RNG = np.random.default_rng(7)
X = RNG.normal(size=(3, 4))
SRC = RNG.normal(size=(2, 4))
INDEX = np.array([[0, 2, 2, 1], [0, 0, 2, 1]])


def test_gather_and_take_along_dim_follow_torch():
    index = np.array([[1, 0, 3], [2, 2, 0]])
    agree_with_torch(lambda x, i: gc.gather(x, 1, i), lambda x, i: torch.gather(x, 1, i),
                     [X[:2], index])
    negative = np.array([[-1], [0], [3]])  # broadcast along the axis' neighbours, wrapped
    agree_with_torch(lambda x, i: gc.take_along_dim(x, i, 1),
                     lambda x, i: torch.take_along_dim(x, i, 1), [X, negative])


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_follows_torch(reduce, include_self):
    x, src = X.copy(), SRC.copy()
    x[0, 0], src[1, 1] = 0.0, 0.0  # products through zeros
    src[0, 3] = src[1, 3] = 2.5  # tied maxima and minima share the gradient
    if include_self:
        x[1, 3] = 2.5  # PyTorch counts x in the tie even when include_self=False: see below
    agree_with_torch(
        lambda x, i, s: gc.scatter_reduce(x, 0, i, s, reduce, include_self=include_self),
        lambda x, i, s: torch.scatter_reduce(x, 0, i, s, reduce, include_self=include_self),
        [x, INDEX, src])


def test_a_tie_excluded_by_include_self_false_does_not_take_a_share():
    """PyTorch shares an amax gradient among the tied src values *and* x's own value even
    with include_self=False, though x's value is not reduced and its share is then dropped
    (the src values get 1/3 each of a three-way tie, 2/3 in all). graphc shares it among
    the values reduced: 1/2 each here, the whole gradient."""
    x = gc.input("x", (2,), "float64")
    s = gc.input("s", (2,), "float64")
    out = gc.scatter_reduce(x, 0, gc.constant(np.array([1, 1])), s, "amax", include_self=False)
    for backend in BACKENDS:
        _, gs = gc.compile([x, s], gc.grad(gc.sum(out), [x, s]), backend=backend)(
            np.array([0.0, 2.5]), np.array([2.5, 2.5]))
        np.testing.assert_array_equal(gs, [0.5, 0.5])


def test_scatter_add_reads_the_index_shaped_corner_of_a_larger_src():
    src = RNG.normal(size=(3, 5))
    agree_with_torch(lambda x, i, s: gc.scatter_add(x, 0, i, s),
                     lambda x, i, s: torch.scatter_add(x, 0, i, s), [X, INDEX, src], grad=False)
    # (PyTorch has no gradient for a larger src) the corner gets the gathered gradient
    x, s = gc.input("x", (3, 4), "float64"), gc.input("s", (3, 5), "float64")
    w = RNG.normal(size=(3, 4))
    out = gc.scatter_add(x, 0, gc.constant(INDEX), s)
    for backend in BACKENDS:
        (gs,) = gc.compile([x, s], gc.grad(gc.sum(out * gc.constant(w)), [s]),
                           backend=backend)(X, src)
        expected = np.zeros((3, 5))
        expected[:2, :4] = np.take_along_axis(w, INDEX, 0)
        np.testing.assert_array_equal(gs, expected)


def test_scatter_with_repeated_indices_keeps_the_last_write_and_its_gradient():
    x = gc.input("x", (3,), "float64")
    s = gc.input("s", (4,), "float64")
    index = gc.constant(np.array([2, 0, 2, 2]))
    out = gc.scatter(x, 0, index, s)
    grads = gc.grad(gc.sum(out * gc.constant(np.array([1.0, 2.0, 3.0]))), [x, s])
    for backend in BACKENDS:
        value, gx, gs = gc.compile([x, s], [out] + grads, backend=backend)(
            np.zeros(3), np.array([10.0, 20.0, 30.0, 40.0]))
        np.testing.assert_array_equal(value, [20.0, 0.0, 40.0])
        np.testing.assert_array_equal(gx, [0.0, 2.0, 0.0])
        np.testing.assert_array_equal(gs, [0.0, 1.0, 0.0, 3.0])


def test_scatter_of_a_scalar_value():
    x = gc.input("x", (2, 3), "float32")
    out = gc.scatter(x, 1, gc.constant(np.array([[2], [0]])), value=-1.0)
    for backend in BACKENDS:
        got = gc.compile([x], out, backend=backend)(np.zeros((2, 3), np.float32))
        np.testing.assert_array_equal(got, [[0, 0, -1], [-1, 0, 0]])


@pytest.mark.parametrize("build,message", [
    (lambda x, i, s: gc.gather(x, 1, i), r"gather: index 4 is out of range \[0, 4\) along axis 1"),
    (lambda x, i, s: gc.scatter_add(x, 1, i, s),
     r"scatter: index 4 is out of range \[0, 4\) along axis 1"),
    (lambda x, i, s: gc.take_along_axis(x, -1 - i, 1),
     r"take_along_axis: index -5 is out of bounds for axis 1 with size 4"),
])
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_index_out_of_range_raises_at_call_time_naming_the_op_and_line(build, message,
                                                                          backend):
    x = gc.input("x", (3, 4), "float64")
    i = gc.input("i", (3, 2), "int64")
    s = gc.input("s", (3, 2), "float64")
    out = build(x, i, s)
    fn = gc.compile([x, i, s], out, backend=backend)
    good = np.array([[0, 1], [2, 3], [3, 3]])
    fn(X[:3], good, np.ones((3, 2)))
    bad = good.copy()
    bad[1, 1] = 4
    with pytest.raises(ValueError, match=message + r".*test_gather.py"):
        fn(X[:3], bad, np.ones((3, 2)))


@pytest.mark.parametrize("build,message", [
    (lambda x, i: gc.gather(x, 1, gc.cast(i, "float32")), "gather: index must be int32 or int64"),
    (lambda x, i: gc.gather(x, 3, i), "gather: dim: axis 3 is out of range"),
    (lambda x, i: gc.gather(x, None, i), r"gather: needs dim= \(or axis=\)"),
    (lambda x, i: gc.gather(x, 0, i[0]), "gather: index of shape .* must have the rank"),
    (lambda x, i: gc.gather(x, 0, gc.concat([i, i, i], 1)), "no larger dims off axis 0"),
    (lambda x, i: gc.scatter(x, 0, i, x[:2, :2], value=1.0), "scatter: give src .* or value"),
    (lambda x, i: gc.scatter(x, 0, i, gc.cast(x[:2, :2], "float32")),
     r"scatter: src \(float32\) and input \(float64\)"),
    (lambda x, i: gc.scatter_add(x, 0, i, x[:1, :2]), "scatter_add: src of shape .* must have"),
    (lambda x, i: gc.scatter_reduce(x, 0, i, x[:2, :2], "max"),
     "scatter_reduce: reduce must be 'sum', 'prod', 'mean', 'amax' or 'amin'"),
    (lambda x, i: gc.gather(x, 0, i, axis=1), "gather: give dim= or axis=, not both"),
    (lambda x, i: gc.take_along_axis(x, i[0], 0), "take_along_axis: indices of shape"),
])
def test_bad_arguments_are_refused_at_build_time(build, message):
    x = gc.input("x", (3, 4), "float64")
    i = gc.input("i", (2, 2), "int64")
    with pytest.raises((gc.GraphError, gc.GraphTypeError), match=message + r".*test_gather.py"):
        build(x, i)
