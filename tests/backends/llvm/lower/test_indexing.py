"""The take kernels along any axis (take, index_select, embedding) and their scatter-add
gradient, split among threads by rows of the taken axis, and wrap_index's call-time check."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

RNG = np.random.default_rng(15)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_take_and_its_gradient_along_every_axis_on_any_thread_count(axis):
    x = gc.input("x", (4, 5, 6), "float64")
    ids = gc.input("ids", (2, 7), "int64")
    taken = gc.take(x, ids, axis=axis)
    w = gc.constant(RNG.normal(size=taken.shape))
    outs = [taken] + gc.grad(gc.sum(taken * w), [x])
    a = RNG.normal(size=(4, 5, 6))
    index = RNG.integers(-4, 4, size=(2, 7))
    expected = gc.compile([x, ids], outs, backend="numpy")(a, index)
    for threads in (1, 2, 3):
        for g, e in zip(gc.compile([x, ids], outs, threads=threads)(a, index), expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, err_msg=f"threads={threads}")


@pytest.mark.parametrize("threads", [1, 3])
def test_wrap_index_reports_the_first_bad_index_it_meets(threads):
    x = gc.input("x", (4, 3), "float32")
    ids = gc.input("ids", (6,), "int32")
    fn = gc.compile([x, ids], gc.take(x, ids, axis=0), threads=threads)
    with pytest.raises(ValueError, match=r"take: index (-5|4) is out of bounds for axis 0 "
                                         r"with size 4"):
        fn(np.zeros((4, 3), np.float32), np.array([0, 1, -5, 2, 4, 3], np.int32))
