"""var, std, logsumexp, norm, any and all against PyTorch, at the points where gradients
have a choice (a zero input, constant rows, tied magnitudes, infinities)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import graphc as gc
from tests.ops.oracle import agree_with_torch, both_backends

# a zero row, a constant row with tied magnitudes, a plain row
KINKS = np.array([[0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0], [1.0, -3.0, 3.0, 0.0]])


@pytest.mark.parametrize("p", [2, 1, math.inf, -math.inf, 3, 0.5, 0])
def test_norm_follows_torch_at_zero_and_at_ties(p):
    agree_with_torch(lambda v: gc.norm(v, p, dim=1), lambda v: torch.linalg.vector_norm(v, p, 1),
                     [KINKS])


def test_norm_over_several_axes_and_of_everything():
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    agree_with_torch(lambda v: gc.norm(v, axis=(0, 2), keepdims=True),
                     lambda v: torch.linalg.vector_norm(v, dim=(0, 2), keepdim=True), [x])
    agree_with_torch(lambda v: gc.norm(v, "fro"), lambda v: torch.norm(v, "fro"), [x])


@pytest.mark.parametrize("correction", [1, 0, 2])
def test_var_and_std_follow_torch(correction):
    agree_with_torch(lambda v: gc.var(v, dim=1, correction=correction),
                     lambda v: torch.var(v, 1, correction=correction), [KINKS])
    agree_with_torch(lambda v: gc.std(v, dim=1, correction=correction),
                     lambda v: torch.std(v, 1, correction=correction), [KINKS])


def test_var_takes_numpys_ddof_and_ints():
    x = gc.input("x", (5,), "int32")
    a = np.array([1, 2, 4, 8, 16], np.int32)
    for out in both_backends([x], [gc.var(x, ddof=0), gc.std(x)], a):
        np.testing.assert_allclose(out[0], np.var(a), rtol=1e-12)
        np.testing.assert_allclose(out[1], np.std(a, ddof=1), rtol=1e-12)


def test_logsumexp_follows_torch_with_infinities():
    x = np.array([[-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 2.0], [1.0, 2.0, 3.0]])
    agree_with_torch(lambda v: gc.logsumexp(v, dim=1), lambda v: torch.logsumexp(v, 1), [x])
    big = np.array([[1000.0, 1000.0, -1000.0]])
    agree_with_torch(lambda v: gc.logsumexp(v, 1, keepdims=True),
                     lambda v: torch.logsumexp(v, 1, keepdim=True), [big])


def test_any_and_all_follow_torch_and_are_defined_over_nothing():
    x = np.array([[0.0, 1.0, np.nan], [0.0, 0.0, 0.0], [2.0, -1.0, 3.0]])
    agree_with_torch(lambda v: gc.any(v, dim=1), lambda v: torch.any(v, 1), [x], grad=False)
    agree_with_torch(lambda v: gc.all(v, 0), lambda v: torch.all(v, 0), [x], grad=False)
    empty = gc.input("e", (0, 2), "float32")
    for out in both_backends([empty], [gc.any(empty, 0), gc.all(empty)],
                             np.zeros((0, 2), np.float32)):
        np.testing.assert_array_equal(out[0], [False, False])
        assert out[1] == np.bool_(True)


@pytest.mark.parametrize("build,message", [
    (lambda x: gc.norm(x, -1), "norm: p must be 'fro', inf, -inf, 0 or a positive number"),
    (lambda x: gc.norm(x, "nuc"), "norm: p must be"),
    (lambda x: gc.var(x, correction="1"), "var: correction must be a number"),
    (lambda x: gc.var(x, correction=1, ddof=0), "var: give correction= or ddof=, not both"),
    (lambda x: gc.std(gc.cast(x, "bool")), "var: does not take bool inputs"),
    (lambda x: gc.logsumexp(x, 2), "logsumexp: axis 2 is out of range"),
])
def test_bad_arguments_are_refused_at_build_time(build, message):
    x = gc.input("x", (3, 4))
    with pytest.raises((gc.GraphError, gc.GraphTypeError),
                       match=message + r".*test_statistics.py"):
        build(x)
