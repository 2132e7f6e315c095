"""Hostile arguments: each is answered with a clear exception (or IEEE values), on every
backend, and the process survives."""

import numpy as np
import pytest

import graphc as gc
from tests.backends_available import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def classifier(backend):
    x = gc.input("x", ("N", 4))
    y = gc.input("y", ("N",), "int32")
    w = gc.param("w", np.full((4, 3), 0.1, np.float32))
    loss = gc.softmax_cross_entropy(x @ w, y)
    (gw,) = gc.grad(loss, [w])
    return gc.compile([x, y], [loss, x @ w], updates={w: w - 0.1 * gw}, backend=backend), w


@pytest.mark.parametrize("x, y, error, message", [
    (np.zeros((2, 4)), np.zeros(2, np.int32), TypeError, "input 'x': expected dtype float32"),
    (np.zeros((2, 4), np.float16), np.zeros(2, np.int32), TypeError, "expected dtype float32"),
    (np.zeros((2, 4), np.float32), np.zeros(2, np.float32), TypeError, "input 'y'"),
    (np.zeros((2, 4, 1), np.float32), np.zeros(2, np.int32), ValueError, r"\(rank 2\)"),
    (np.zeros((2, 5), np.float32), np.zeros(2, np.int32), ValueError, "axis 1 should be 4"),
    (np.zeros((2, 4), np.float32), np.zeros(3, np.int32), ValueError, "bound to 2, but got 3"),
    (np.zeros((2, 4), object), np.zeros(2, np.int32), TypeError, "expected dtype float32"),
    ("x", np.zeros(2, np.int32), TypeError, "expected a numpy array"),
    (None, np.zeros(2, np.int32), TypeError, "expected a numpy array"),
    (np.zeros((2, 4), np.float32), np.array([0, 3], np.int32), ValueError,
     r"label 3 is out of range \[0, 3\)"),
    (np.zeros((2, 4), np.float32), np.array([-1, 0], np.int32), ValueError,
     r"label -1 is out of range"),
])
def test_bad_arguments(backend, x, y, error, message):
    step, w = classifier(backend)
    before = w.value.copy()
    with pytest.raises(error, match=message):
        step(x, y)
    np.testing.assert_array_equal(w.value, before)  # a refused call changes nothing
    step(np.ones((2, 4), np.float32), np.zeros(2, np.int32))  # and the function still works


def test_non_contiguous_read_only_and_zero_size_arguments(backend):
    step, _ = classifier(backend)
    base = np.arange(24, dtype=np.float32).reshape(3, 8) / 24
    x = base[:, ::2]
    x.setflags(write=False)
    y = np.array([0, 1, 2], np.int32)
    reference = classifier("numpy")[0](np.ascontiguousarray(x), y)
    loss, logits = step(x, y)
    np.testing.assert_allclose(loss, reference[0], rtol=1e-5)
    f = gc.compile([x_ := gc.input("x", ("N", 4))], gc.relu(x_) * 2.0, backend=backend)
    assert f(np.zeros((0, 4), np.float32)).shape == (0, 4)


def test_nan_and_inf_propagate_as_ieee(backend):
    x = gc.input("x", (5,), "float64")
    f = gc.compile([x], [x * 2.0, gc.exp(x), gc.sum(x), gc.relu(x), gc.maximum(x, 0.0)],
                   backend=backend)
    a = np.array([np.nan, np.inf, -np.inf, 1.0, -1.0])
    doubled, exps, total, relu, maximum = f(a)
    assert np.isnan(doubled[0]) and doubled[1] == np.inf and doubled[2] == -np.inf
    assert np.isnan(exps[0]) and exps[1] == np.inf and exps[2] == 0.0
    assert np.isnan(total)
    assert np.isnan(relu[0]) and np.isnan(maximum[0])


def test_replacing_a_param_with_another_shape_is_refused(backend):
    step, w = classifier(backend)
    with pytest.raises(ValueError, match=r"param 'w': new value has shape \(3, 4\), "
                                         r"expected \(4, 3\)"):
        w.value = np.zeros((3, 4), np.float32)
    w.value = np.zeros((4, 3), np.float32)  # the same shape is fine
    loss, _ = step(np.ones((2, 4), np.float32), np.zeros(2, np.int32))
    assert np.isclose(loss, np.log(3))


def test_huge_symbolic_shapes_are_refused_before_any_allocation(backend):
    x = gc.input("x", ("N", "M"))
    f = gc.compile([x], gc.reshape(x, (-1,)) * 2.0, backend=backend)
    # a broadcast view with a huge logical size: arguments are checked, never trusted
    huge = np.broadcast_to(np.float32(1), (2**20, 2**20))
    with pytest.raises((ValueError, MemoryError), match="too large|Unable to allocate|exceeds"):
        f(huge)


def test_sizes_that_would_overflow_are_refused_before_anything_runs(backend):
    x = gc.input("x", ("N",))
    outer = x[:, None] * x[None, :]  # materialized: an output, not fused into a reduction
    f = gc.compile([x], [outer.sum(), outer], backend=backend)
    view = np.broadcast_to(np.float32(1), (2**31,))  # no memory behind it
    # 2**62 float32 elements: 2**64 bytes, past int64 arithmetic
    with pytest.raises((ValueError, MemoryError), match="exceeds|too big|Unable to allocate"):
        f(view)
    total, _ = f(np.ones(3, np.float32))
    assert total == 9.0
