"""Float max/min reductions over a contiguous axis run in vector lanes (IEEE maximum/
minimum): they must still propagate a NaN from any position and match NumPy exactly."""

import numpy as np
import pytest

import graphc as gc


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduce_name", ["max", "min"])
@pytest.mark.parametrize("length", [1, 7, 16, 33, 64, 100])
def test_inner_max_min_match_numpy_with_nan_and_inf_anywhere(dtype, reduce_name, length):
    rng = np.random.default_rng(length)
    rows = length + 3
    a = rng.normal(size=(rows, length)).astype(dtype)
    for r in range(length):  # one NaN per row, at every position in turn
        a[r, r] = np.nan
    a[length, :] = np.inf
    a[length + 1, :] = -np.inf
    a[length + 2, length // 2] = np.inf if reduce_name == "max" else -np.inf
    x = gc.input("x", ("R", length), dtype)
    f = gc.compile([x], [getattr(gc, reduce_name)(x, axis=1), getattr(gc, reduce_name)(x)],
                   backend="llvm")
    rowwise, whole = f(a)
    reference = getattr(np, reduce_name)
    np.testing.assert_array_equal(rowwise, reference(a, axis=1))
    assert np.isnan(whole) and np.isnan(reference(a))
    np.testing.assert_array_equal(f(a[length:])[0], reference(a[length:], axis=1))
