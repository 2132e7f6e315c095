"""The gather and scatter kernels: inputs read through strided views, the same bits on any
thread count, and bad indices (huge, negative) reported, never used as addresses, with the
params of a failing call untouched."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

RNG = np.random.default_rng(12)


def test_strided_views_feed_gather_and_scatter():
    x = gc.input("x", (5, 6), "float64")
    i = gc.input("i", (4, 3), "int64")
    source = x.T[1:5, ::2]  # a transposed, sliced view: (4, 3)
    outs = [gc.gather(source, 1, gc.minimum(i, 2)), gc.scatter_add(x.T, 0, i, source),
            gc.scatter_reduce(x[::-1], 1, i, source * 2.0, "amax")]
    a, index = RNG.normal(size=(5, 6)), RNG.integers(0, 5, size=(4, 3))
    got = gc.compile([x, i], outs)(a, index)
    expected = gc.compile([x, i], outs, backend="numpy")(a, index)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_scatters_with_many_duplicates_give_the_same_bits_on_any_thread_count():
    x = gc.input("x", (64, 40), "float32")
    i = gc.input("i", (300, 40), "int64")
    s = gc.input("s", (300, 40), "float32")
    outs = [gc.scatter_add(x, 0, i, s), gc.scatter_reduce(x, 0, i, s, "prod"),
            gc.scatter(x, 0, i, s), gc.gather(s, 0, i)]
    args = (RNG.normal(size=(64, 40)).astype(np.float32), RNG.integers(0, 64, size=(300, 40)),
            RNG.normal(size=(300, 40)).astype(np.float32))
    one = gc.compile([x, i, s], outs, threads=1)(*args)
    for threads in (2, 3):
        for a, b in zip(one, gc.compile([x, i, s], outs, threads=threads)(*args)):
            np.testing.assert_array_equal(a, b, err_msg=f"threads={threads}")
    for a, b in zip(one, gc.compile([x, i, s], outs, backend="numpy")(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("bad", [1 << 40, -(1 << 40), -1, 6])
def test_a_bad_index_raises_and_leaves_params_untouched(threads, bad):
    table = gc.param("table", np.arange(12.0).reshape(6, 2))
    i = gc.input("i", (3, 2), "int64")
    loss = gc.sum(gc.gather(table, 0, i) * 3.0)
    (g,) = gc.grad(loss, [table])
    scattered = gc.scatter(table, 0, i, gc.gather(table, 0, i) + 1.0)
    fn = gc.compile([i], [loss, scattered], threads=threads, updates={table: table - g})
    before = table.value.copy()
    index = np.array([[0, 1], [5, 4], [2, 2]])
    index[1, 0] = bad
    with pytest.raises(ValueError, match=rf"index {bad} is out of range \[0, 6\) along axis 0"):
        fn(index)
    np.testing.assert_array_equal(table.value, before)
    index[1, 0] = 3
    fn(index)  # the function still works
    assert not np.array_equal(table.value, before)
