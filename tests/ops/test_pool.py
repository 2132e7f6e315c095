"""max_pool2d and avg_pool2d: sweeps against direct loops, ties and overlapping windows in
max pooling's gradient, padding, symbolic dims, gradients by central differences, and every
build-time error."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphc as gc
from tests.ops.cases_conv import (
    avg_pool2d_grad_loops,
    avg_pool2d_loops,
    max_pool2d_grad_loops,
    max_pool2d_loops,
    sampled_gradient_check,
)


def _pair(v):
    return (v, v) if isinstance(v, int) else v


# (kernel, stride, padding); stride None is the kernel; padding is at most half the kernel.
SWEEP = [(k, s, p) for k, s, p in itertools.product([1, 2, 3, 5, (3, 2), (2, 4)],
                                                    [None, 1, 2, (2, 1)], [0, 1, 2, (1, 0)])
         if all(pp <= kk // 2 for pp, kk in zip(_pair(p), _pair(k), strict=True))]
POOLS = {"max": (gc.max_pool2d, max_pool2d_loops), "avg": (gc.avg_pool2d, avg_pool2d_loops)}


def _distinct(shape, seed=0):
    """Well-separated values: no ties, so finite differences never cross an argmax change."""
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + 0.01 * rng.random(shape)


def _run(fn, arrays, dtype="float64"):
    nodes = [gc.input(f"a{k}", a.shape, dtype) for k, a in enumerate(arrays)]
    return gc.compile(nodes, fn(*nodes), backend="numpy")(*(a.astype(dtype) for a in arrays))


def test_sweep_is_not_empty():
    assert len(SWEEP) > 40


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("kernel,stride,padding", SWEEP)
def test_forward_matches_loops(kind, kernel, stride, padding):
    pool, loops = POOLS[kind]
    x = _distinct((2, 3, 7, 6))
    expected = loops(x, _pair(kernel), _pair(kernel if stride is None else stride),
                     _pair(padding))
    for dtype in ("float64", "float32"):
        out = _run(lambda x: pool(x, kernel, stride, padding), (x,), dtype)
        assert out.dtype == dtype and out.shape == expected.shape
        np.testing.assert_allclose(out, expected, rtol=1e-12 if dtype == "float64" else 1e-6)


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("kernel,stride,padding", SWEEP)
def test_gradient_matches_finite_differences(kind, kernel, stride, padding):
    pool, _ = POOLS[kind]
    x = _distinct((2, 2, 7, 6), seed=1)
    probe = _run(lambda x: pool(x, kernel, stride, padding), (x,))
    r = np.random.default_rng(2).normal(size=probe.shape)
    sampled_gradient_check(lambda x: gc.sum(pool(x, kernel, stride, padding) * r), (x,),
                           samples=12)


@pytest.mark.parametrize("kernel,stride,padding", SWEEP[::4])
def test_gradient_ops_match_loops(kernel, stride, padding):
    x = _distinct((2, 2, 7, 6), seed=3)
    stride = kernel if stride is None else stride
    k, s, p = _pair(kernel), _pair(stride), _pair(padding)
    g = np.random.default_rng(4).normal(size=max_pool2d_loops(x, k, s, p).shape)
    dmax, davg = _run(lambda x, g: [
        gc.grad(gc.sum(pool(x, kernel, stride, padding) * g), [x])[0]
        for pool in (gc.max_pool2d, gc.avg_pool2d)], (x, g))
    np.testing.assert_array_equal(dmax, max_pool2d_grad_loops(x, g, k, s, p))
    np.testing.assert_allclose(davg, avg_pool2d_grad_loops(g, x.shape[2:], k, s, p),
                               atol=1e-12)


def _max_pool_grad(x, g, *args, **kwargs):
    return _run(lambda x, g: gc.grad(gc.sum(gc.max_pool2d(x, *args, **kwargs) * g), [x])[0],
                (x, g))


def test_ties_send_the_gradient_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0, 3.0, 0.0],
                    [3.0, 2.0, 0.0, 0.0],
                    [5.0, 5.0, 7.0, 7.0],
                    [5.0, 5.0, 7.0, 7.0]]]])
    g = np.array([[[[10.0, 20.0], [30.0, 40.0]]]])
    expected = np.array([[[[0.0, 10.0, 20.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0],
                           [30.0, 0.0, 40.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0]]]])
    np.testing.assert_array_equal(_max_pool_grad(x, g, 2), expected)
    ties = np.ones((2, 3, 6, 5))
    g = np.random.default_rng(0).normal(size=(2, 3, 3, 3))
    got = _max_pool_grad(ties, g, 3, stride=2, padding=1)
    np.testing.assert_array_equal(got, max_pool2d_grad_loops(ties, g, (3, 3), (2, 2), (1, 1)))


def test_overlapping_windows_accumulate_at_a_shared_maximum():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0  # the maximum of all nine 3x3 windows (stride 1)
    g = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    got = _max_pool_grad(x, g, 3, stride=1)
    expected = np.zeros_like(x)
    expected[0, 0, 2, 2] = g.sum()
    np.testing.assert_array_equal(got, expected)


def test_all_minus_infinity_window_picks_its_first_real_position():
    """Padding (-inf) ties with an all -inf window; like PyTorch, the first real element wins."""
    x = np.full((1, 1, 3, 3), -np.inf)
    x[0, 0, 2, 2] = 1.0
    g = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out = _run(lambda x: gc.max_pool2d(x, 2, stride=2, padding=1), (x,))
    np.testing.assert_array_equal(out, [[[[-np.inf, -np.inf], [-np.inf, 1.0]]]])
    got = _max_pool_grad(x, g, 2, stride=2, padding=1)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 0], expected[0, 0, 0, 1], expected[0, 0, 1, 0] = 1.0, 2.0, 3.0
    expected[0, 0, 2, 2] = 4.0
    np.testing.assert_array_equal(got, expected)


def test_avg_pool_counts_padding_in_the_divisor():
    x = np.ones((1, 1, 2, 2))
    out = _run(lambda x: gc.avg_pool2d(x, 2, stride=1, padding=1), (x,))
    np.testing.assert_allclose(out[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5],
                                           [0.25, 0.5, 0.25]])


@pytest.mark.parametrize("kind", POOLS)
def test_symbolic_batch_and_spatial_dims(kind):
    pool, loops = POOLS[kind]
    x = gc.input("x", ("N", 2, "H", "W"), "float64")
    out = pool(x, 3, stride=2, padding=1)
    assert str(out.shape[0]) == "N" and out.shape[1] == 2
    (dx,) = gc.grad(gc.sum(out * out), [x])
    fn = gc.compile([x], [out, dx], backend="numpy")
    for n, h, w in [(1, 5, 4), (3, 8, 9), (2, 1, 1)]:
        xv = _distinct((n, 2, h, w), seed=n)
        y, g = fn(xv)
        expected = loops(xv, (3, 3), (2, 2), (1, 1))
        assert y.shape == (n, 2, (h - 1) // 2 + 1, (w - 1) // 2 + 1)
        np.testing.assert_allclose(y, expected, rtol=1e-12)
        grad_loops = (max_pool2d_grad_loops(xv, 2 * expected, (3, 3), (2, 2), (1, 1))
                      if kind == "max" else avg_pool2d_grad_loops(2 * expected, (h, w), (3, 3),
                                                                  (2, 2), (1, 1)))
        np.testing.assert_allclose(g, grad_loops, rtol=1e-12)


def test_symbolic_input_too_small_for_the_kernel_raises_at_call_time():
    x = gc.input("x", (1, 1, "H", "W"), "float64")
    for name in ("max_pool2d", "avg_pool2d"):
        fn = gc.compile([x], getattr(gc, name)(x, 4, padding=1), backend="numpy")
        with pytest.raises(ValueError, match=name + r": kernel 4x4 is larger than the padded "
                                                    r"input: shape \(1, 1, 1, 5\)"):
            fn(np.zeros((1, 1, 1, 5)))
        with pytest.raises(ValueError, match=name + r": the input's height and width must be "
                                                    r"nonzero, got shape \(1, 1, 6, 0\)"):
            fn(np.zeros((1, 1, 6, 0)))


@pytest.mark.parametrize("kind", POOLS)
def test_empty_batch(kind):
    x = gc.input("x", ("N", 2, 5, 4), "float64")
    out = POOLS[kind][0](x, 3, stride=2, padding=1)
    fn = gc.compile([x], [out] + gc.grad(gc.sum(out * out), [x]), backend="numpy")
    y, dx = fn(np.zeros((0, 2, 5, 4)))
    assert y.shape == (0, 2, 3, 2) and dx.shape == (0, 2, 5, 4)


# ----- errors ------------------------------------------------------------------------------------
def _x(shape=(2, 3, 8, 8), dtype="float32"):
    return gc.input("x", shape, dtype)


HERE = r"\(at .*test_pool\.py:\d+\)"


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("call,error,message", [
    (lambda pool: pool(_x((3, 8, 8)), 2), gc.GraphError,
     r"x must be 4-D \(NCHW / OIHW\), got shape \(3, 8, 8\)"),
    (lambda pool: pool(_x(dtype="int64"), 2), gc.GraphTypeError,
     r"x must be float32 or float64, got int64 \(shape \(2, 3, 8, 8\)\)"),
    (lambda pool: pool(_x(), 0), gc.GraphError, r"kernel_size must be at least 1, got 0"),
    (lambda pool: pool(_x(), (2, 2.0)), gc.GraphError,
     r"kernel_size must be an int or a pair of ints, got \(2, 2.0\)"),
    (lambda pool: pool(_x(), None), gc.GraphError,
     r"kernel_size must be an int or a pair of ints, got None"),
    (lambda pool: pool(_x(), 2, stride=0), gc.GraphError, r"stride must be at least 1, got 0"),
    (lambda pool: pool(_x(), 2, stride=[1]), gc.GraphError,
     r"stride must be an int or a pair of ints, got \[1\]"),
    (lambda pool: pool(_x(), 2, padding=-1), gc.GraphError,
     r"padding must be at least 0, got -1"),
    (lambda pool: pool(_x(), 3, padding=2), gc.GraphError,
     r"padding \(2, 2\) must be at most half the kernel \(3, 3\)"),
    (lambda pool: pool(_x(), (4, 2), padding=(2, 2)), gc.GraphError,
     r"padding \(2, 2\) must be at most half the kernel \(4, 2\)"),
    (lambda pool: pool(_x((1, 1, 0, 8)), 1), gc.GraphError,
     r"the input's height and width must be nonzero, got \(1, 1, 0, 8\)"),
    (lambda pool: pool(_x((1, 1, 3, 8)), 5, padding=(0, 1)), gc.GraphError,
     r"kernel 5x5 is larger than the padded input: \(1, 1, 3, 8\) with padding \(0, 1\)"),
])
def test_build_errors(name, call, error, message):
    pool = getattr(gc, name)
    with pytest.raises(error, match=name + ": " + message + r".*" + HERE):
        call(pool)


MAX_ATTRS = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                 ceil_mode=False)
AVG_ATTRS = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False,
                 count_include_pad=True, divisor_override=None)


@pytest.mark.parametrize("build,message", [
    (lambda: gc.Node.make("max_pool2d_grad", (_x(), _x((2, 3, 3, 4))), **MAX_ATTRS),
     r"max_pool2d_grad: g of shape \(2, 3, 3, 4\) does not have the output size \(4, 4\)"),
    (lambda: gc.Node.make("max_pool2d_grad", (_x(), _x((2, 2, 4, 4))), **MAX_ATTRS),
     r"max_pool2d_grad: x \(2, 3, 8, 8\) and g \(2, 2, 4, 4\) differ in batch or channels"),
    (lambda: gc.Node.make("max_pool2d_gather", (_x(), _x((2, 3, 8, 7))), **MAX_ATTRS),
     r"max_pool2d_gather: h must have x's shape \(2, 3, 8, 8\), got \(2, 3, 8, 7\)"),
    (lambda: gc.Node.make("avg_pool2d_grad", (_x((2, 3, 4, 5)),), input_shape=(8, 8),
                          **AVG_ATTRS),
     r"avg_pool2d_grad: g of shape \(2, 3, 4, 5\) does not have the output size \(4, 4\)"),
])
def test_gradient_op_build_errors(build, message):
    with pytest.raises(gc.GraphError, match=message):
        build()
