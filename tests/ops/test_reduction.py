"""The reductions against PyTorch where gradients have a choice: prod through zeros, max/min
with indices (the gradient goes to the returned index) against amax/amin and full-tensor
max (shared among ties); argmin at NaN; PyTorch's argument names next to NumPy's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc as gc
from tests.ops.oracle import agree_with_torch, both_backends

TIES = np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 0.0], [0.0, -1.0, 0.0, -1.0]])


def test_prod_gradient_through_zeros_follows_torch():
    x = np.array([[2.0, 0.0, 3.0, 1.5], [0.0, 0.0, 1.0, 4.0], [1.0, 2.0, 3.0, 0.5]])
    agree_with_torch(lambda v: gc.prod(v, dim=1), lambda v: torch.prod(v, 1), [x])
    agree_with_torch(lambda v: gc.prod(v[1:, :]), lambda v: torch.prod(v[1:, :]), [x])
    agree_with_torch(lambda v: gc.prod(v[::2]), lambda v: torch.prod(v[::2]), [x])


def test_max_and_min_with_indices_send_the_gradient_to_the_returned_index():
    agree_with_torch(lambda v: gc.max(v, dim=1, return_indices=True).values,
                     lambda v: torch.max(v, 1).values, [TIES])
    agree_with_torch(lambda v: gc.max(v, 0, return_indices=True).indices,
                     lambda v: torch.max(v, 0).indices, [TIES], grad=False)
    agree_with_torch(lambda v: gc.min(v, dim=1, keepdim=True, return_indices=True).values,
                     lambda v: torch.min(v, 1, keepdim=True).values, [TIES])
    agree_with_torch(lambda v: gc.min(v, 1, return_indices=True).indices,
                     lambda v: torch.min(v, 1).indices, [TIES], grad=False)


def test_amax_amin_and_whole_max_share_the_gradient_among_ties():
    agree_with_torch(lambda v: gc.amax(v, dim=1), lambda v: torch.amax(v, 1), [TIES])
    agree_with_torch(lambda v: gc.amin(v, 0, keepdim=True), lambda v: torch.amin(v, 0, True),
                     [TIES])
    agree_with_torch(lambda v: gc.max(v), lambda v: torch.max(v), [TIES])


def test_argmin_and_argmax_pick_the_first_nan_like_torch():
    x = np.array([[1.0, np.nan, -2.0, np.nan], [3.0, -1.0, -1.0, 0.0]])
    agree_with_torch(lambda v: gc.argmin(v, dim=1), lambda v: torch.argmin(v, 1), [x],
                     grad=False)
    agree_with_torch(lambda v: gc.argmax(v, dim=1), lambda v: torch.argmax(v, 1), [x],
                     grad=False)


def test_torch_and_numpy_argument_names_mean_the_same():
    x = gc.input("x", (2, 3, 4))
    assert gc.sum(x, dim=(0, 2), keepdim=True) is gc.sum(x, axis=(0, 2), keepdims=True)
    assert gc.mean(x, dim=1) is gc.mean(x, 1)
    assert gc.argmax(x, dim=2, keepdim=True) is gc.argmax(x, 2, True)


def test_prod_of_nothing_is_one_and_of_ints_is_int64():
    x = gc.input("x", (0, 3), "int32")
    for out in both_backends([x], [gc.prod(x, 0), gc.prod(x, 1)], np.zeros((0, 3), np.int32)):
        np.testing.assert_array_equal(out[0], np.ones(3, np.int64))
        assert out[0].dtype == np.int64 and out[1].shape == (0,)


@pytest.mark.parametrize("build,message", [
    (lambda x: gc.sum(x, axis=0, dim=1), "sum: give axis= or dim=, not both"),
    (lambda x: gc.max(x, return_indices=True), "max: return_indices=True needs one axis"),
    (lambda x: gc.min(x, (0, 1), return_indices=True), "min: return_indices=True needs one"),
    (lambda x: gc.prod(x, 3), "prod: axis 3 is out of range"),
    (lambda x: gc.argmin(x, (0, 1)), "argmin: takes one axis or None"),
])
def test_bad_arguments_are_refused_at_build_time(build, message):
    x = gc.input("x", (3, 4))
    with pytest.raises(gc.GraphError, match=message + r".*test_reduction.py"):
        build(x)
