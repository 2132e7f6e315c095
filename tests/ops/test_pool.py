"""max_pool2d and avg_pool2d: sweeps against direct loops, ties and overlapping windows in
max pooling's gradient, padding, symbolic dims, gradients by central differences, and every
build-time error; dilation, ceil_mode, count_include_pad, divisor_override, 1-D and
adaptive pools against torch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


# ----- dilation, ceil_mode, count_include_pad, 1-D and adaptive pools, against torch -----------
TORCH_POOLS = [  # graphc function, torch function, input shape, args, kwargs
    ("max_pool2d", (2, 2, 7, 8), (3,), dict(stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", (2, 2, 9, 8), (3,), dict(stride=2, padding=1, dilation=2)),
    ("max_pool2d", (2, 2, 7, 8), ((2, 3),), dict(stride=(3, 2), padding=(1, 1),
                                                   dilation=(2, 1), ceil_mode=True)),
    ("max_pool2d", (1, 2, 8, 8), (2,), dict(ceil_mode=True)),  # ceil changes nothing
    ("avg_pool2d", (2, 2, 7, 8), (3,), dict(stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", (2, 2, 7, 8), (3,), dict(stride=2, padding=1, ceil_mode=True,
                                            count_include_pad=False)),
    ("avg_pool2d", (2, 2, 6, 8), ((2, 4),), dict(stride=3, padding=(1, 2), ceil_mode=True)),
    ("avg_pool2d", (2, 2, 6, 8), (3,), dict(padding=1, divisor_override=2)),
    ("avg_pool2d", (2, 2, 6, 8), (3,), dict(padding=1, count_include_pad=False,
                                            divisor_override=-4)),
    ("max_pool1d", (2, 3, 9), (3,), dict(stride=2, padding=1, dilation=2, ceil_mode=True)),
    ("max_pool1d", (2, 3, 10), (2,), {}),
    ("avg_pool1d", (2, 3, 9), (4,), dict(stride=3, padding=2, ceil_mode=True,
                                         count_include_pad=False)),
    ("avg_pool1d", (2, 3, 10), (4,), dict(stride=3, padding=2, ceil_mode=True)),
    ("adaptive_avg_pool2d", (2, 2, 7, 8), ((3, 5),), {}),
    ("adaptive_avg_pool2d", (2, 2, 3, 4), ((5, 7),), {}),  # larger than the input
    ("adaptive_avg_pool2d", (2, 2, 7, 8), (1,), {}),  # global
    ("adaptive_avg_pool2d", (2, 2, 6, 8), ((None, 4),), {}),  # windows that tile
    ("adaptive_max_pool2d", (2, 2, 7, 8), ((3, 5),), {}),
    ("adaptive_max_pool2d", (2, 2, 3, 4), ((5, 7),), {}),
    ("adaptive_max_pool2d", (2, 2, 7, 8), (1,), {}),
    ("adaptive_max_pool2d", (2, 2, 6, 8), ((3, 2),), {}),
]


@pytest.mark.parametrize("name,shape,args,kwargs", TORCH_POOLS,
                         ids=[f"{p[0]}{p[2]}{p[3]}" for p in TORCH_POOLS])
def test_pools_match_torch(name, shape, args, kwargs):
    """Values and input gradients (float64, distinct values: no ties)."""
    xv = _distinct(shape, seed=len(kwargs))
    tx = torch.tensor(xv, requires_grad=True)
    ty = getattr(F, name)(tx, *args, **kwargs)
    g = np.random.default_rng(1).normal(size=tuple(ty.shape))
    (ty * torch.tensor(g)).sum().backward()
    x = gc.input("x", shape, "float64")
    y = getattr(gc, name)(x, *args, **kwargs)
    out, dx = gc.compile([x], [y, *gc.grad(gc.sum(y * gc.constant(g)), [x])],
                         backend="numpy")(xv)
    np.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("pool,kwargs", [
    (gc.max_pool2d, dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    (gc.avg_pool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                         count_include_pad=False)),
    (gc.adaptive_max_pool2d, dict(output_size=(3, 4))),
    (gc.adaptive_avg_pool2d, dict(output_size=(4, 5)))])
def test_pool_gradients_by_central_differences(pool, kwargs):
    x = _distinct((2, 2, 7, 6), seed=4)
    r = np.random.default_rng(2).normal(size=pool(gc.input("x", x.shape), **kwargs).shape)
    sampled_gradient_check(lambda x: gc.sum(pool(x, **kwargs) * r), (x,), samples=10)


def test_adaptive_max_ties_send_the_gradient_to_the_first_maximum():
    """PyTorch's adaptive_max_pool2d: the first maximum of each window takes its gradient
    (a global max over a constant plane: the first pixel)."""
    x = np.ones((1, 2, 3, 5))
    g = np.array([[[[2.0]], [[3.0]]]])
    got = _run(lambda x, g: gc.grad(gc.sum(gc.adaptive_max_pool2d(x, 1) * g), [x])[0], (x, g))
    tx = torch.tensor(x, requires_grad=True)
    (F.adaptive_max_pool2d(tx, 1) * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(got, tx.grad.numpy())
    assert got[0, 0, 0, 0] == 2.0 and got.sum() == 5.0


def test_adaptive_and_ceil_mode_pools_take_symbolic_sizes():
    x = gc.input("x", ("N", 2, "H", "W"), "float64")
    outs = [gc.adaptive_avg_pool2d(x, (2, 3)), gc.adaptive_max_pool2d(x, (3, 2)),
            gc.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
            gc.avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False),
            gc.adaptive_avg_pool2d(x, 1)]
    loss = gc.sum(outs[0] * outs[0]) + gc.sum(outs[1] * outs[1])
    fn = gc.compile([x], outs + gc.grad(loss, [x]), backend="numpy")
    for shape in [(1, 2, 3, 4), (2, 2, 7, 5)]:
        xv = _distinct(shape, seed=shape[2])
        got = fn(xv)
        t = torch.tensor(xv, requires_grad=True)
        expected = [F.adaptive_avg_pool2d(t, (2, 3)), F.adaptive_max_pool2d(t, (3, 2)),
                    F.max_pool2d(t, 3, stride=2, padding=1, ceil_mode=True),
                    F.avg_pool2d(t, 2, ceil_mode=True, count_include_pad=False),
                    F.adaptive_avg_pool2d(t, 1)]
        ((expected[0] ** 2).sum() + (expected[1] ** 2).sum()).backward()
        for a, e in zip(got, expected + [t.grad], strict=True):
            np.testing.assert_allclose(a, e.detach().numpy(), rtol=1e-14)


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


@pytest.mark.parametrize("build,message", [
    (lambda: gc.max_pool2d(_x(), 2, dilation=0), r"max_pool2d: dilation must be at least 1"),
    (lambda: gc.max_pool2d(_x(), 3, dilation=4),
     r"max_pool2d: kernel 3x3 with dilation \(4, 4\) is larger than the padded input: "
     r"\(2, 3, 8, 8\) with padding \(0, 0\)"),
    (lambda: gc.max_pool2d(_x(), 2, ceil_mode=1), r"max_pool2d: ceil_mode must be a bool, "
                                                  r"got 1"),
    (lambda: gc.avg_pool2d(_x(), 2, count_include_pad="yes"),
     r"avg_pool2d: count_include_pad must be a bool, got 'yes'"),
    (lambda: gc.avg_pool2d(_x(), 2, divisor_override=0),
     r"avg_pool2d: divisor_override must be a nonzero int or None, got 0"),
    (lambda: gc.avg_pool2d(_x(), 2, divisor_override=1.5),
     r"avg_pool2d: divisor_override must be a nonzero int or None, got 1.5"),
    (lambda: gc.max_pool1d(_x(), 2), r"max_pool1d: x must be 3-D \(NCL / OCK\), got shape "
                                     r"\(2, 3, 8, 8\)"),
    (lambda: gc.max_pool1d(_x((2, 3, 8)), (2, 2)),
     r"max_pool1d: kernel_size must be an int of at least 1, got \(2, 2\)"),
    (lambda: gc.avg_pool1d(_x((2, 3, 8)), 2, padding=2),
     r"avg_pool1d: padding 2 must be at most half the kernel 2"),
    (lambda: gc.max_pool1d(_x((2, 3, 4)), 3, dilation=3),
     r"max_pool1d: kernel 3 \(spanning 7\) is longer than the padded input: \(2, 3, 4\) "
     r"with padding 0"),
    (lambda: gc.adaptive_avg_pool2d(_x(), 0), r"adaptive_avg_pool2d: output_size must be "
                                              r"positive, got 0"),
    (lambda: gc.adaptive_max_pool2d(_x(), (2, 2, 2)),
     r"adaptive_max_pool2d: output_size must be an int or a pair of ints \(or None\), got "
     r"\(2, 2, 2\)"),
    (lambda: gc.adaptive_max_pool2d(_x((2, 3, "H", 8)), (None, 2)),
     r"adaptive_max_pool2d: output_size \(None, 2\) keeps axis 2 of x \(2, 3, H, 8\), whose "
     r"size is symbolic"),
    (lambda: gc.adaptive_avg_pool2d(_x((2, 3, 0, 8)), 2),
     r"adaptive_avg_pool2d: the input's height and width must be nonzero, got \(2, 3, 0, 8\)"),
    (lambda: gc.adaptive_max_pool2d(_x(dtype="int32"), 2),
     r"adaptive_max_pool2d: x must be float32 or float64, got int32"),
    (lambda: gc.adaptive_avg_pool2d(_x((8, 8)), 2),
     r"adaptive_avg_pool2d: x must be 4-D \(NCHW / OIHW\), got shape \(8, 8\)"),
])
def test_new_argument_errors(build, message):
    with pytest.raises((gc.GraphError, gc.GraphTypeError), match=message + r".*" + HERE):
        build()


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
