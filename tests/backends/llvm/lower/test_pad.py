"""pad and pad_grad on the LLVM backend against the NumPy backend: every mode, several
padded axes, float and integer dtypes, identical bits for any thread count (pad_grad's
border is added by one thread in a fixed order), and sizes bound at call time that a mode
cannot take refused as the reference refuses them."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

CASES = [  # shape, pad, mode, dtype
    ((2, 3, 5, 6), (1, 2, 2, 1), "reflect", "float32"),
    ((2, 3, 5, 6), (1, 2, 2, 1, 1, 0), "replicate", "float64"),
    ((2, 3, 5, 6), (6, 6, 5, 5), "circular", "float64"),
    ((2, 3, 5, 6), (1, 1, 2, 2, 1, 0), "constant", "float32"),
    ((7,), (2, 3), "reflect", "float64"),
    ((3, 4, 5), (0, 0, 3, 1), "replicate", "float32"),
    ((2, 3, 5, 6), (1, 2, 3, 1), "constant", "int32"),
    ((2, 3, 5, 6), (2, 1, 1, 2), "reflect", "int64"),
]


@pytest.mark.parametrize("shape,pad,mode,dtype", CASES,
                         ids=[f"{c[2]}{c[1]}-{c[3]}" for c in CASES])
def test_pad_and_its_gradient(shape, pad, mode, dtype):
    rng = np.random.default_rng(len(shape) + len(pad))
    x = gc.input("x", shape, dtype)
    y = gc.pad(x, pad, mode=mode, value=1.5 if mode == "constant" else None)
    inputs, outputs = [x], [y]
    args = [(rng.normal(size=shape) * 10).astype(dtype)]
    if np.dtype(dtype).kind == "f":
        g = gc.input("g", y.shape, dtype)
        inputs.append(g)
        outputs += gc.grad(gc.sum(y * g), [x])
        args.append(rng.normal(size=y.shape).astype(dtype))
    expected = gc.compile(inputs, outputs, backend="numpy")(*args)
    one = gc.compile(inputs, outputs, threads=1)(*args)
    two = gc.compile(inputs, outputs, threads=2)(*args)
    np.testing.assert_array_equal(one[0], expected[0])
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    if len(one) > 1:  # border sums in another order than NumPy's axis-by-axis folds
        np.testing.assert_allclose(one[1], expected[1], rtol=1e-6 if dtype == "float32"
                                   else 1e-14, atol=1e-6 if dtype == "float32" else 1e-14)


def test_sizes_bound_at_call_time_too_small_for_the_mode():
    x = gc.input("x", (1, "H", 4))
    fn = gc.compile([x], gc.pad(x, (0, 0, 3, 1), mode="reflect"))
    assert fn(np.ones((1, 4, 4), np.float32)).shape == (1, 8, 4)
    with pytest.raises(ValueError, match=r"pad: reflect padding \(3, 1\) of axis 1 must be "
                                         r"smaller than its size 3 \(shape \(1, 3, 4\)\)"):
        fn(np.ones((1, 3, 4), np.float32))
