"""sort, argsort and topk against PyTorch: stable order at ties in both directions, NaNs,
lengths that are no power of two, gradients to where values came from, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc as gc
from tests.ops.oracle import agree_with_torch

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_is_stable_and_puts_nans_where_torch_does(descending):
    x = RNG.integers(0, 4, size=(3, 37)).astype(np.float64)
    x[0, [3, 20]] = np.nan
    x[2, 5] = -np.inf
    for axis in (1, 0):
        agree_with_torch(lambda v, a=axis: gc.sort(v, a, descending).values,
                         lambda v, a=axis: torch.sort(v, dim=a, descending=descending,
                                                      stable=True).values, [x])
        agree_with_torch(lambda v, a=axis: gc.argsort(v, a, descending),
                         lambda v, a=axis: torch.sort(v, dim=a, descending=descending,
                                                      stable=True).indices, [x], grad=False)


def test_sorted_values_send_their_gradient_back_to_their_positions():
    agree_with_torch(lambda v: gc.sort(v, dim=0).values, lambda v: torch.sort(v, 0).values,
                     [RNG.normal(size=(9, 4))])


@pytest.mark.parametrize("largest", [True, False])
def test_topk_follows_torch(largest):
    x = RNG.normal(size=(4, 10))
    agree_with_torch(lambda v: gc.topk(v, 3, largest=largest).values,
                     lambda v: torch.topk(v, 3, largest=largest).values, [x])
    agree_with_torch(lambda v: gc.topk(v, 10, dim=1, largest=largest).indices,
                     lambda v: torch.topk(v, 10, dim=1, largest=largest).indices, [x], grad=False)


def test_long_int_rows_sort_like_numpy_on_two_threads():
    a = RNG.integers(-1000, 1000, size=(2, 1000)).astype(np.int32)
    x = gc.input("x", a.shape, "int32")
    got = gc.compile([x], gc.argsort(x), threads=2)(a)
    np.testing.assert_array_equal(got, np.argsort(a, axis=-1, kind="stable"))


@pytest.mark.parametrize("build,message", [
    (lambda x: gc.topk(x, 5), r"topk: k = 5 is larger than the size 4 of axis 1 of \(3, 4\)"),
    (lambda x: gc.topk(x, -1), "topk: k must be at least 0"),
    (lambda x: gc.topk(x, 1.5), "topk: k must be an int"),
    (lambda x: gc.sort(x, 2), "sort: dim: axis 2 is out of range"),
    (lambda x: gc.argsort(gc.sum(x)), "argsort: needs an input of at least one dim"),
    (lambda x: gc.topk(gc.input("s", ("N",)), 1), "topk: axis 0 of .N,. has symbolic size"),
])
def test_bad_arguments_are_refused_at_build_time(build, message):
    x = gc.input("x", (3, 4))
    with pytest.raises(gc.GraphError, match=message + r".*test_sort.py"):
        build(x)
