"""cumsum, cumprod, cummax and cummin against PyTorch: values, gradients (cumprod through
zeros), indices at ties and NaNs, ints, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc as gc
from tests.ops.oracle import agree_with_torch, both_backends

RNG = np.random.default_rng(3)


def test_cumsum_follows_torch_forward_and_backward():
    agree_with_torch(lambda x: gc.cumsum(x, dim=0), lambda x: torch.cumsum(x, 0),
                     [RNG.normal(size=(5, 3))])


def test_cumprod_gradient_through_zeros_follows_torch():
    x = RNG.normal(size=(4, 6))
    x[0, 0] = 0.0  # a zero first
    x[1, 2] = 0.0  # one in the middle
    x[2, 1] = x[2, 4] = 0.0  # two apart
    x[3, 3] = x[3, 4] = 0.0  # two in a row
    agree_with_torch(lambda v: gc.cumprod(v, dim=1), lambda v: torch.cumprod(v, 1), [x])


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_running_extrema_follow_torch_at_ties_and_nans(name):
    x = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 0.5],
                  [2.0, np.nan, 1.0, np.nan, 5.0, -1.0]])
    gc_fn, torch_fn = getattr(gc, name), getattr(torch, name)
    agree_with_torch(lambda v: gc_fn(v, 1).values, lambda v: torch_fn(v, 1).values, [x])
    agree_with_torch(lambda v: gc_fn(v, 1).indices, lambda v: torch_fn(v, 1).indices, [x],
                     grad=False)
    ints = RNG.integers(-3, 3, size=(7, 2)).astype(np.int32)
    agree_with_torch(lambda v: gc_fn(v, dim=0).indices, lambda v: torch_fn(v, 0).indices,
                     [ints], grad=False)


def test_cumsum_of_ints_is_int64_and_of_nothing_is_empty():
    x = gc.input("x", (3, 0), "int32")
    for out in both_backends([x], [gc.cumsum(x, 0), gc.cumprod(x, 1)],
                             np.zeros((3, 0), np.int32)):
        assert all(o.dtype == np.int64 and o.shape == (3, 0) for o in out)


def test_a_long_single_row_splits_among_threads_the_same_as_one_thread():
    x = gc.input("x", (1, 300, 70), "float32")
    a = RNG.normal(size=(1, 300, 70)).astype(np.float32)
    outs = [gc.cumsum(x, 1), gc.cumprod(x * 0.01 + 1.0, 1), gc.cummax(x, 1).indices]
    one = gc.compile([x], outs, threads=1)(a)
    two = gc.compile([x], outs, threads=2)(a)
    reference = gc.compile([x], outs, backend="numpy")(a)
    for o, t, r in zip(one, two, reference):
        np.testing.assert_array_equal(o, t)
        np.testing.assert_allclose(o, r, rtol=1e-5)


@pytest.mark.parametrize("build,message", [
    (lambda x: gc.cumsum(x, 2), "cumsum: axis: axis 2 is out of range"),
    (lambda x: gc.cumsum(x, axis=0, dim=1), "cumsum: give axis= or dim=, not both"),
    (lambda x: gc.cummax(x), r"cummax: needs dim= \(or axis=\)"),
    (lambda x: gc.cummin(gc.cast(x, "bool"), 0), "cummin_index: does not take bool inputs"),
])
def test_bad_arguments_are_refused_at_build_time(build, message):
    x = gc.input("x", (3, 4))
    with pytest.raises((gc.GraphError, gc.GraphTypeError), match=message + r".*test_scan.py"):
        build(x)
