"""What the conv-path tests share: the graph they compile (a conv, or relu(conv + b), and
its input gradient) and the comparison with the reference when inputs hold inf or NaN."""

from __future__ import annotations

import numpy as np

import graphc as gc


def conv_and_input_grad(shape, dtype, epilogue):
    """Inputs [x, w, b, g] and outputs [y, dx] for shape (N, C, H, W, K, kh, kw, padding):
    y = conv2d(x, w), or relu(conv2d(x, w) + b) with `epilogue`; dx = d sum(y * g) / dx."""
    n, c, h, wd, o, kh, kw, padding = shape
    x, w = gc.input("x", (n, c, h, wd), dtype), gc.input("w", (o, c, kh, kw), dtype)
    b = gc.input("b", (o,), dtype)
    y = gc.conv2d(x, w, padding=padding)
    if epilogue:
        y = gc.relu(y + gc.reshape(b, (1, o, 1, 1)))
    g = gc.input("g", y.shape, dtype)
    (gx,) = gc.grad(gc.sum(y * g), [x])
    return [x, w, b, g], [y, gx]


def assert_matches_reference_with_nonfinite(inputs, outputs, args, rtol: float) -> None:
    """Each output on the LLVM backend against the NumPy reference: NaN, +inf and -inf at
    the same places, the finite values within rtol of the largest finite value."""
    for output in outputs:
        (got,) = gc.compile(inputs, [output])(*args)
        (expected,) = gc.compile(inputs, [output], backend="numpy")(*args)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=rtol,
                                   atol=rtol * np.max(np.abs(expected[finite]), initial=1))


def assert_matches_reference(inputs, outputs, args, epilogue: bool, rtol: float,
                             label: str) -> None:
    """The forward output and the input gradient, each compiled alone (with the gradient,
    the relu would join its mask in one fused group), against the NumPy reference, within
    rtol of the largest value; with `epilogue` the bias and relu run in the conv's kernel."""
    for name, output in zip(("forward", "input gradient"), outputs):
        compiled = gc.compile(inputs, [output], backend="llvm")
        if epilogue and name == "forward":
            assert "fused_conv2d" in compiled.to_dot()
        (got,) = compiled(*args)
        (expected,) = gc.compile(inputs, [output], backend="numpy")(*args)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        scale = float(np.max(np.abs(expected))) if expected.size else 1.0
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale,
                                   err_msg=f"{name} of {label}")
