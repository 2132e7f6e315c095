"""The vector path of 2x2 stride-2 pooling (max, average, their gradients and the gather
of max pooling's second derivative) against the NumPy backend, bit for bit: rows of
windows short enough to take several per vector, shorter than a vector, exactly one, and
longer with a masked tail; images whose last row or column no window reads; ties, NaN
and -inf; 1 to 3 threads (thread shares that end inside a vector of rows)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

SHAPES = [  # (N, C, H, W): output rows of 1, 2, 3, 4, 5, 8, 14, 16, 17 and 40 windows
    (1, 5, 2, 2),    # short rows: several whole rows per vector
    (2, 7, 4, 4),
    (4, 3, 6, 6),
    (3, 5, 8, 8),
    (2, 3, 10, 10),
    (1, 2, 4, 16),
    (3, 2, 28, 28),
    (1, 1, 6, 32),
    (2, 2, 5, 35),   # last row and column unread
    (1, 3, 3, 80),   # last row unread
]


def _values(shape, dtype, seed):
    """Few distinct values (ties in most windows), NaNs, and a plane of -inf."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    x.flat[rng.integers(0, x.size, 4)] = np.nan
    x[-1, -1] = -np.inf
    return x


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_2x2_pools_match_numpy_exactly(shape, dtype, threads):
    x = gc.input("x", shape, dtype)
    top = gc.max_pool2d(x, 2)
    mean = gc.avg_pool2d(x, 2)
    g = gc.input("g", top.shape, dtype)
    h = gc.input("h", shape, dtype)
    (dx,) = gc.grad(gc.sum(top * g), [x])
    (dmean,) = gc.grad(gc.sum(mean * g), [x])
    (gathered,) = gc.grad(gc.sum(dx * h), [g])  # max_pool2d_gather
    outputs = [top, mean, dx, dmean, gathered]
    rng = np.random.default_rng(1)
    args = [_values(shape, dtype, 0), rng.normal(size=top.shape).astype(dtype),
            rng.normal(size=shape).astype(dtype)]
    compiled = gc.compile([x, g, h], outputs, backend="llvm", threads=threads)
    got = compiled(*args)
    expected = gc.compile([x, g, h], outputs, backend="numpy")(*args)
    for name, gv, ev in zip(["max", "avg", "max grad", "avg grad", "gather"], got, expected,
                            strict=True):
        assert gv.dtype == ev.dtype, name
        np.testing.assert_array_equal(gv, ev, err_msg=name)


def test_2x2_gradient_zeroes_unread_pixels_of_a_dirty_arena():
    """Pixels outside every window get 0 even when the buffer held other values (a second
    call reuses the arena)."""
    x = gc.input("x", (1, 2, 5, 7), "float32")
    top = gc.max_pool2d(x, 2)
    (dx,) = gc.grad(gc.sum(top * top), [x])
    step = gc.compile([x], [dx, top * 1.0])
    rng = np.random.default_rng(2)
    for _ in range(2):
        a = rng.normal(size=(1, 2, 5, 7)).astype(np.float32)
        got, _ = step(a)
        np.testing.assert_array_equal(got[:, :, 4, :], 0)
        np.testing.assert_array_equal(got[:, :, :, 6], 0)
        np.testing.assert_array_equal(got, gc.compile([x], [dx], backend="numpy")(a)[0])


def test_every_2x2_pool_op_takes_the_vector_path():
    """Each op the vector path covers is lowered by it (its masked vector loads are in the
    IR; the general window loops load scalars): the path is not just correct but used."""
    x = gc.input("x", (2, 3, 8, 8), "float32")
    g = gc.input("g", (2, 3, 4, 4), "float32")
    h = gc.input("h", (2, 3, 8, 8), "float32")
    top, mean = gc.max_pool2d(x, 2), gc.avg_pool2d(x, 2)
    (dx,) = gc.grad(gc.sum(top * g), [x])
    (dmean,) = gc.grad(gc.sum(mean * g), [x])
    (gathered,) = gc.grad(gc.sum(dx * h), [g])
    rng = np.random.default_rng(0)
    args = [rng.normal(size=v.shape).astype(np.float32) for v in (x, g, h)]
    for name, value in [("max_pool2d", top), ("avg_pool2d", mean), ("max_pool2d_grad", dx),
                        ("avg_pool2d_grad", dmean), ("max_pool2d_gather", gathered)]:
        variant = gc.compile([x, g, h], value, optimize=False).compiled(*args)
        (kernel,) = [line for line in variant.ir.splitlines()
                     if line.startswith("define") and name in line]
        body = variant.ir.split(kernel, 1)[1].split("\n}\n", 1)[0]
        assert "llvm.masked.load" in body, f"{name} did not take the vector path"
