"""The convolution graph the conv-path tests compile: a conv (or relu(conv + b)) and its
input gradient."""

from __future__ import annotations

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
