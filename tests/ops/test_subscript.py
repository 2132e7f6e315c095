"""x[...] with NumPy's advanced indexing against NumPy itself (values, and gradients against
np.add.at), index values checked at call time on both backends, and refused indexes."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from tests.ops.oracle import BACKENDS, both_backends

RNG = np.random.default_rng(9)
A = RNG.normal(size=(3, 4, 5))
MASK = RNG.random((3, 4)) < 0.5

INDEXES = [
    np.s_[[0, 2]],
    np.s_[:, [1, -1], 2:4],
    np.s_[[0, 1], :, [2, 3]],  # arrays apart: their shape leads
    np.s_[1, :, [0, 2]],  # an int among arrays is an array: apart again
    np.s_[:, 1, [0, 2]],  # adjacent: in place
    np.s_[..., [[0], [3]], [1, 2]],  # arrays broadcast together
    np.s_[None, [0, 1], None, :, [1, 1]],
    np.s_[MASK],
    np.s_[MASK, 1:3],
    np.s_[np.array([True, False, True])],
    np.s_[[]],
    np.s_[::-1, [3, 0], ::2],
]


@pytest.mark.parametrize("index", INDEXES, ids=[str(k) for k in range(len(INDEXES))])
def test_indexing_follows_numpy_values_and_gradients(index):
    x = gc.input("x", A.shape, "float64")
    out = x[index]
    w = RNG.normal(size=np.shape(A[index]))
    grads = gc.grad(gc.sum(out * gc.constant(w)), [x])
    expected_grad = np.zeros_like(A)
    np.add.at(expected_grad, index, w)
    for value, grad in both_backends([x], [out] + grads, A):
        np.testing.assert_array_equal(value, A[index])
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)


def test_a_constant_mask_node_is_a_mask():
    x = gc.input("x", A.shape, "float64")
    for (value,) in both_backends([x], [x[gc.constant(MASK)]], A):
        np.testing.assert_array_equal(value, A[MASK])


@pytest.mark.parametrize("backend", BACKENDS)
def test_graph_index_values_wrap_and_are_checked_at_call_time(backend):
    x = gc.input("x", A.shape, "float64")
    i = gc.input("i", (2,), "int32")
    fn = gc.compile([x, i], [x[i, 1:, i], x[:, i]], backend=backend)
    index = np.array([2, -1], np.int32)
    apart, adjacent = fn(A, index)
    np.testing.assert_array_equal(apart, A[index, 1:, index])
    np.testing.assert_array_equal(adjacent, A[:, index])
    with pytest.raises(ValueError, match=r"getitem: index -5 is out of bounds for axis 0 with "
                                         r"size 3 .*test_subscript.py"):
        fn(A, np.array([0, -5], np.int32))
    with pytest.raises(ValueError, match="getitem: index 3 is out of bounds for axis 0"):
        fn(A, np.array([3, 0], np.int32))


def test_a_constant_index_on_a_symbolic_axis_is_checked_at_call_time():
    x = gc.input("x", ("N", 2), "float32")
    for backend in BACKENDS:
        fn = gc.compile([x], x[[0, -1]], backend=backend)
        a = np.arange(6, dtype=np.float32).reshape(3, 2)
        np.testing.assert_array_equal(fn(a), a[[0, -1]])
        # the reference names the size the call bound N to; native code names N
        with pytest.raises(ValueError, match="getitem: index 0 is out of bounds for axis 0 "
                                             "with size (0|N)"):
            fn(np.zeros((0, 2), np.float32))


@pytest.mark.parametrize("index,error,message", [
    (lambda: gc.input("m", (3,), "bool"), gc.GraphError,
     "a boolean mask index must be a constant .* gc.where"),
    (lambda: [0.5], gc.GraphError, "only ints, slices, ..., None, int arrays and boolean masks"),
    (lambda: gc.input("f", (2,), "float32"), gc.GraphTypeError, "an index value must be int"),
    (lambda: True, gc.GraphError, "a bool scalar is not an index"),
    (lambda: (np.array([0, 3]),), IndexError, "index 3 is out of bounds for axis 0 with size 3"),
    (lambda: (0, 0, [7]), IndexError, "index 7 is out of bounds for axis 2 with size 5"),
    (lambda: MASK[:2], IndexError, r"a boolean mask of shape \(2, 4\) does not match"),
    (lambda: ([0, 1], [0, 1, 2]), gc.GraphError, "index arrays of shapes .* do not broadcast"),
    (lambda: (0, 0, 0, [0]), gc.GraphError, r"too many indices \(4\)"),
])
def test_bad_indexes_are_refused_at_build_time(index, error, message):
    x = gc.input("x", A.shape, "float64")
    with pytest.raises(error, match="getitem: " + message + r".*test_subscript.py"):
        x[index()]
