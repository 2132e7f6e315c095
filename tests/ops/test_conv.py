"""conv2d and conv1d: sweeps over kernel, stride and padding against direct loops; groups,
dilation, padding forms and padding_mode against torch; gradients by central differences,
symbolic dims, second derivatives, and every build-time error."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import graphc as gc
from tests.ops.cases_conv import (
    conv2d_grad_input_loops,
    conv2d_grad_weight_loops,
    conv2d_loops,
    sampled_gradient_check,
)

KERNELS = [1, 2, 3, 5, (3, 2), (1, 4)]
STRIDES = [1, 2, (2, 1)]
PADDINGS = [0, 1, 2, (1, 0)]
SWEEP = list(itertools.product(KERNELS, STRIDES, PADDINGS))


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _arrays(kernel, seed=0, x_shape=(2, 3, 7, 6), out_channels=4):
    rng = np.random.default_rng(seed)
    kh, kw = _pair(kernel)
    x = rng.normal(size=x_shape)
    w = rng.normal(size=(out_channels, x_shape[1], kh, kw))
    b = rng.normal(size=out_channels)
    return x, w, b


def _run(fn, arrays, dtype="float64"):
    nodes = [gc.input(f"a{k}", a.shape, dtype) for k, a in enumerate(arrays)]
    return gc.compile(nodes, fn(*nodes), backend="numpy")(*(a.astype(dtype) for a in arrays))


@pytest.mark.parametrize("kernel,stride,padding", SWEEP)
def test_forward_matches_loops(kernel, stride, padding):
    x, w, b = _arrays(kernel)
    out = _run(lambda x, w, b: gc.conv2d(x, w, b, stride=stride, padding=padding), (x, w, b))
    expected = conv2d_loops(x, w, _pair(stride), _pair(padding)) + b[:, None, None]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    out32 = _run(lambda x, w, b: gc.conv2d(x, w, b, stride=stride, padding=padding), (x, w, b),
                 "float32")
    assert out32.dtype == np.float32
    # float32 sums of up to 75 products against a float64 expectation.
    np.testing.assert_allclose(out32, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel,stride,padding", SWEEP)
def test_gradient_matches_finite_differences(kernel, stride, padding):
    x, w, b = _arrays(kernel, seed=1)
    out_shape = conv2d_loops(x, w, _pair(stride), _pair(padding)).shape
    r = np.random.default_rng(2).normal(size=out_shape)

    def loss(x, w, b):
        return gc.sum(gc.tanh(gc.conv2d(x, w, b, stride=stride, padding=padding)) * r)

    sampled_gradient_check(loss, (x, w, b), samples=8)


@pytest.mark.parametrize("kernel,stride,padding", SWEEP[::3])
def test_gradient_ops_match_loops(kernel, stride, padding):
    """The gradient graph's values equal the loop formulas for d/dx and d/dw."""
    x, w, _ = _arrays(kernel, seed=3)
    stride, padding = _pair(stride), _pair(padding)
    g = np.random.default_rng(4).normal(size=conv2d_loops(x, w, stride, padding).shape)
    dx, dw = _run(lambda x, w, g: gc.grad(gc.sum(gc.conv2d(x, w, stride=stride,
                                                           padding=padding) * g), [x, w]),
                  (x, w, g))
    np.testing.assert_allclose(dx, conv2d_grad_input_loops(g, w, x.shape[2:], stride, padding),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, conv2d_grad_weight_loops(x, g, w.shape[2:], stride, padding),
                               rtol=1e-12, atol=1e-11)


def test_symbolic_batch_and_spatial_dims():
    x = gc.input("x", ("N", 2, "H", "W"), "float64")
    w = gc.input("w", (3, 2, 3, 2), "float64")
    out = gc.conv2d(x, w, stride=2, padding=1)
    assert str(out.shape[0]) == "N" and out.shape[1] == 3
    loss = gc.sum(out * out)
    fn = gc.compile([x, w], [out] + gc.grad(loss, [x, w]), backend="numpy")
    rng = np.random.default_rng(0)
    wv = rng.normal(size=(3, 2, 3, 2))
    for n, h, wd in [(1, 5, 4), (3, 8, 7), (2, 2, 1)]:
        xv = rng.normal(size=(n, 2, h, wd))
        y, dx, dw = fn(xv, wv)
        expected = conv2d_loops(xv, wv, (2, 2), (1, 1))
        assert y.shape == ((n, 3, (h + 2 - 3) // 2 + 1, (wd + 2 - 2) // 2 + 1))
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, conv2d_grad_input_loops(2 * expected, wv, (h, wd),
                                                               (2, 2), (1, 1)), atol=1e-11)
        np.testing.assert_allclose(dw, conv2d_grad_weight_loops(xv, 2 * expected, (3, 2),
                                                                (2, 2), (1, 1)), atol=1e-11)


def test_symbolic_input_too_small_for_the_kernel_raises_at_call_time():
    x = gc.input("x", (1, 1, "H", 4), "float64")
    w = gc.input("w", (1, 1, 3, 3), "float64")
    fn = gc.compile([x, w], gc.conv2d(x, w), backend="numpy")
    with pytest.raises(ValueError, match=r"conv2d: kernel 3x3 is larger than the padded input: "
                                         r"shape \(1, 1, 2, 4\) with padding \(0, 0\)"):
        fn(np.zeros((1, 1, 2, 4)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: the input's height and width must be "
                                         r"nonzero, got shape \(1, 1, 0, 4\)"):
        fn(np.zeros((1, 1, 0, 4)), np.zeros((1, 1, 3, 3)))


def test_empty_batch_gives_empty_outputs_and_zero_weight_gradients():
    x = gc.input("x", ("N", 2, 5, 4), "float64")
    w = gc.input("w", (3, 2, 3, 2), "float64")
    out = gc.conv2d(x, w, stride=2, padding=1)
    fn = gc.compile([x, w], [out] + gc.grad(gc.sum(out * out), [x, w]), backend="numpy")
    y, dx, dw = fn(np.zeros((0, 2, 5, 4)), np.ones((3, 2, 3, 2)))
    assert y.shape == (0, 3, 3, 3) and dx.shape == (0, 2, 5, 4)
    np.testing.assert_array_equal(dw, np.zeros((3, 2, 3, 2)))


def test_hessian_vector_product_through_conv_and_pooling():
    """grad(grad(f) . v) against central differences of grad(f) along v: exercises the
    gradients of conv2d_grad_input, conv2d_grad_weight, max_pool2d_grad, avg_pool2d_grad."""
    rng = np.random.default_rng(7)
    xv, w1v, w2v = rng.normal(size=(2, 2, 8, 7)), rng.normal(size=(3, 2, 3, 3)), \
        rng.normal(size=(2, 3, 2, 2))
    vs = [rng.normal(size=a.shape) for a in (xv, w1v, w2v)]
    x, w1, w2 = (gc.input(n, a.shape, "float64") for n, a in
                 (("x", xv), ("w1", w1v), ("w2", w2v)))
    v = [gc.input(f"v{k}", a.shape, "float64") for k, a in enumerate(vs)]

    h = gc.tanh(gc.conv2d(x, w1, stride=1, padding=1))
    h = gc.max_pool2d(h, 3, stride=2, padding=1)
    h = gc.conv2d(h, w2, stride=(1, 2), padding=(0, 1))
    f = gc.sum(gc.tanh(gc.avg_pool2d(h, 2, stride=1)) ** 2)
    params = [x, w1, w2]
    grads = gc.grad(f, params)
    hvp = gc.grad(gc.sum(gc.add(gc.add(gc.sum(grads[0] * v[0]), gc.sum(grads[1] * v[1])),
                                gc.sum(grads[2] * v[2]))), params)
    ops = {n.op for n in gc.Graph(hvp)}
    assert {"conv2d_grad_input", "conv2d_grad_weight", "max_pool2d_gather",
            "avg_pool2d_grad"} <= ops
    grad_fn = gc.compile(params, grads, backend="numpy")
    hvp_fn = gc.compile(params + v, hvp, backend="numpy")
    analytic = hvp_fn(xv, w1v, w2v, *vs)
    eps = 1e-5
    plus = grad_fn(*(a + eps * d for a, d in zip((xv, w1v, w2v), vs, strict=True)))
    minus = grad_fn(*(a - eps * d for a, d in zip((xv, w1v, w2v), vs, strict=True)))
    for a, p, m in zip(analytic, plus, minus, strict=True):
        # central differences of a gradient with eps 1e-5: truncation error ~ eps^2 * f'''.
        np.testing.assert_allclose(a, (p - m) / (2 * eps), rtol=1e-5, atol=1e-6)


# ----- groups, dilation, padding forms (issue 16), against torch --------------------------------
TORCH_2D = [  # x shape, w shape, kwargs of gc.conv2d (and nn.Conv2d)
    ((2, 4, 7, 8), (6, 2, 3, 3), dict(groups=2, padding=1)),
    ((2, 4, 7, 8), (4, 1, 3, 3), dict(groups=4, padding=1, stride=2)),  # depthwise
    ((2, 4, 7, 8), (8, 1, 3, 2), dict(groups=4, padding=(2, 1), dilation=(2, 3))),
    ((1, 6, 9, 7), (6, 3, 2, 2), dict(groups=2, stride=(2, 1), dilation=2)),
    ((2, 3, 7, 8), (4, 3, 4, 2), dict(padding="same")),  # the odd pixel: bottom, right
    ((2, 3, 7, 8), (4, 3, 3, 4), dict(padding="same", dilation=(2, 1))),
    ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding="valid", stride=2)),
    ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding=((2, 0), (1, 3)))),
    ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding=(2, 1), padding_mode="reflect")),
    ((2, 4, 5, 6), (4, 2, 3, 3), dict(padding=2, padding_mode="circular", groups=2, stride=2)),
    ((2, 4, 5, 6), (4, 4, 2, 3), dict(padding="same", padding_mode="replicate")),
]
TORCH_1D = [
    ((2, 4, 9), (6, 2, 3), dict(groups=2, padding=1)),
    ((2, 4, 9), (8, 1, 3), dict(groups=4, stride=2, dilation=3, padding=2)),
    ((2, 3, 9), (4, 3, 4), dict(padding="same", dilation=2)),
    ((2, 3, 9), (4, 3, 3), dict(padding=(0, 2))),
    ((2, 3, 9), (4, 3, 3), dict(padding=2, padding_mode="reflect", stride=2)),
]


def _against_torch(fn, module, x_shape, w_shape, kwargs):
    """Output and the gradients of x, w and b of fn(x, w, b, **kwargs) against torch's
    nn module with the same arguments, float64."""
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    xv, wv, bv = (rng.normal(size=s) for s in (x_shape, w_shape, w_shape[:1]))
    torch_kwargs, before = dict(kwargs), lambda t: t
    padding = kwargs.get("padding")
    if isinstance(padding, tuple) and any(isinstance(p, tuple) for p in padding) or \
            len(x_shape) == 3 and isinstance(padding, tuple):
        # Per-side padding, which torch's modules lack: F.pad first (last axis first).
        pairs = [p if isinstance(p, tuple) else (p, p) for p in padding]
        if len(x_shape) == 3:
            pairs = [padding]
        flat = [v for pair in reversed(pairs) for v in pair]
        torch_kwargs["padding"] = 0
        before = lambda t: F.pad(t, flat)  # noqa: E731
    layer = module(x_shape[1], w_shape[0], w_shape[2:], bias=True, dtype=torch.float64,
                   **torch_kwargs)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(wv))
        layer.bias.copy_(torch.tensor(bv))
    tx = torch.tensor(xv, requires_grad=True)
    ty = layer(before(tx))
    g = rng.normal(size=tuple(ty.shape))
    (ty * torch.tensor(g)).sum().backward()
    x, w, b = (gc.input(n, a.shape, "float64") for n, a in (("x", xv), ("w", wv), ("b", bv)))
    y = fn(x, w, b, **kwargs)
    got = gc.compile([x, w, b], [y, *gc.grad(gc.sum(y * gc.constant(g)), [x, w, b])],
                     backend="numpy")(xv, wv, bv)
    expected = [ty.detach().numpy(), tx.grad.numpy(), layer.weight.grad.numpy(),
                layer.bias.grad.numpy()]
    for a, e in zip(got, expected, strict=True):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("x_shape,w_shape,kwargs", TORCH_2D)
def test_conv2d_matches_torch(x_shape, w_shape, kwargs):
    _against_torch(gc.conv2d, torch.nn.Conv2d, x_shape, w_shape, kwargs)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("x_shape,w_shape,kwargs", TORCH_1D)
def test_conv1d_matches_torch(x_shape, w_shape, kwargs):
    _against_torch(gc.conv1d, torch.nn.Conv1d, x_shape, w_shape, kwargs)


@pytest.mark.parametrize("kwargs", [dict(groups=2, dilation=(2, 1), stride=(1, 2), padding=2),
                                    dict(groups=4, padding="same", padding_mode="reflect")])
def test_grouped_dilated_gradient_by_central_differences(kwargs):
    x, w, b = _arrays((3, 3), seed=5, x_shape=(2, 4, 7, 6), out_channels=4)
    w = w[:, : 4 // kwargs["groups"]]
    probe = gc.conv2d(gc.input("x", x.shape), gc.input("w", w.shape), **kwargs)
    r = np.random.default_rng(6).normal(size=probe.shape)
    sampled_gradient_check(lambda x, w, b: gc.sum(gc.tanh(gc.conv2d(x, w, b, **kwargs)) * r),
                           (x, w, b), samples=8)


def test_gradient_ops_with_groups_and_dilation_match_loops():
    """conv2d_grad_input and conv2d_grad_weight of a grouped, dilated, strided conv equal
    the transposed loops (by way of torch's autograd of the loop-checked forward)."""
    rng = np.random.default_rng(8)
    xv, wv = rng.normal(size=(2, 6, 8, 7)), rng.normal(size=(9, 2, 2, 3))
    kwargs = dict(stride=(2, 1), padding=(1, 2), dilation=(3, 2), groups=3)
    np.testing.assert_allclose(
        _run(lambda x, w: gc.conv2d(x, w, **kwargs), (xv, wv)),
        conv2d_loops(xv, wv, (2, 1), (1, 2), (3, 2), 3), rtol=1e-12, atol=1e-12)
    g = rng.normal(size=conv2d_loops(xv, wv, (2, 1), (1, 2), (3, 2), 3).shape)
    dx, dw = _run(lambda x, w, g: gc.grad(gc.sum(gc.conv2d(x, w, **kwargs) * g), [x, w]),
                  (xv, wv, g))
    tx, tw = torch.tensor(xv, requires_grad=True), torch.tensor(wv, requires_grad=True)
    (F.conv2d(tx, tw, **kwargs) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_symbolic_dims_with_groups_dilation_and_padding_mode():
    x = gc.input("x", ("N", 4, "H", "W"), "float64")
    w = gc.input("w", (4, 2, 3, 3), "float64")
    out = gc.conv2d(x, w, padding="same", dilation=2, groups=2, padding_mode="reflect")
    assert [str(d) for d in out.shape] == ["N", "4", "H", "W"]
    fn = gc.compile([x, w], [out, *gc.grad(gc.sum(out * out), [x, w])], backend="numpy")
    layer = torch.nn.Conv2d(4, 4, 3, padding="same", dilation=2, groups=2,
                            padding_mode="reflect", bias=False, dtype=torch.float64)
    for shape in [(1, 4, 3, 5), (2, 4, 6, 4)]:
        xv = np.random.default_rng(0).normal(size=shape)
        wv = np.random.default_rng(1).normal(size=(4, 2, 3, 3))
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(wv))
        layer.weight.grad = None
        tx = torch.tensor(xv, requires_grad=True)
        ty = layer(tx)
        (ty * ty).sum().backward()
        got = fn(xv, wv)
        for a, e in zip(got, [ty.detach(), tx.grad, layer.weight.grad], strict=True):
            np.testing.assert_allclose(a, e.numpy(), rtol=1e-12, atol=1e-11)


# ----- errors ------------------------------------------------------------------------------------
def _x(shape=(2, 3, 8, 8), dtype="float32"):
    return gc.input("x", shape, dtype)


def _w(shape=(4, 3, 3, 3), dtype="float32"):
    return gc.input("w", shape, dtype)


HERE = r"\(at .*test_conv\.py:\d+\)"


@pytest.mark.parametrize("build,error,message", [
    (lambda: gc.conv2d(_x((3, 8, 8)), _w()), gc.GraphError,
     r"conv2d: x must be 4-D \(NCHW / OIHW\), got shape \(3, 8, 8\)"),
    (lambda: gc.conv2d(_x(), _w((4, 3, 3))), gc.GraphError,
     r"conv2d: w must be 4-D \(NCHW / OIHW\), got shape \(4, 3, 3\)"),
    (lambda: gc.conv2d(_x(), _w((4, 2, 3, 3))), gc.GraphError,
     r"conv2d: x has 3 channels but w expects 2: x \(2, 3, 8, 8\), w \(4, 2, 3, 3\)"),
    (lambda: gc.conv2d(_x(dtype="int32"), _w()), gc.GraphTypeError,
     r"conv2d: x must be float32 or float64, got int32 \(shape \(2, 3, 8, 8\)\)"),
    (lambda: gc.conv2d(_x(), _w(dtype="float64")), gc.GraphTypeError,
     r"conv2d: inputs must have one dtype, got x float32, w float64; cast one of them"),
    (lambda: gc.conv2d(_x(), _w(), stride=0), gc.GraphError,
     r"conv2d: stride must be at least 1, got 0"),
    (lambda: gc.conv2d(_x(), _w(), stride=(1, -2)), gc.GraphError,
     r"conv2d: stride must be at least 1, got \(1, -2\)"),
    (lambda: gc.conv2d(_x(), _w(), padding=-1), gc.GraphError,
     r"conv2d: padding must be at least 0, got -1"),
    (lambda: gc.conv2d(_x(), _w(), stride=1.5), gc.GraphError,
     r"conv2d: stride must be an int or a pair of ints, got 1.5"),
    (lambda: gc.conv2d(_x(), _w(), padding=(1, 1, 1)), gc.GraphError,
     r"conv2d: padding must be an int, an \(h, w\) pair, a pair of \(before, after\) pairs, "
     r"'valid' or 'same', got \(1, 1, 1\)"),
    (lambda: gc.conv2d(_x(), _w(), padding=True), gc.GraphError,
     r"conv2d: padding must be an int, an \(h, w\) pair, .* got True"),
    (lambda: gc.conv2d(_x(), _w(), stride="2"), gc.GraphError,
     r"conv2d: stride must be an int or a pair of ints, got '2'"),
    (lambda: gc.conv2d(_x((1, 3, 4, 9)), _w((4, 3, 7, 3)), padding=1), gc.GraphError,
     r"conv2d: kernel 7x3 is larger than the padded input: \(1, 3, 4, 9\) with padding "
     r"\(1, 1\)"),
    (lambda: gc.conv2d(_x((2, 3, 8, 0)), _w(), padding=2), gc.GraphError,
     r"conv2d: the input's height and width must be nonzero, got \(2, 3, 8, 0\)"),
    (lambda: gc.conv2d(_x(), _w(), gc.input("b", (3,))), gc.GraphError,
     r"conv2d: bias must have shape \(4,\) for w \(4, 3, 3, 3\), got \(3,\)"),
    (lambda: gc.conv2d(_x(), _w(), gc.input("b", (4, 1))), gc.GraphError,
     r"conv2d: bias must have shape \(4,\) for w \(4, 3, 3, 3\), got \(4, 1\)"),
    (lambda: gc.conv2d(_x(), _w(), gc.input("b", (4,), "int64")), gc.GraphTypeError,
     r"conv2d: b must be float32 or float64, got int64 \(shape \(4,\)\)"),
    (lambda: gc.conv2d(_x(), _w(), gc.input("b", (4,), "float64")), gc.GraphTypeError,
     r"conv2d: inputs must have one dtype, got x float32, b float64"),
    (lambda: gc.conv2d(_x(("N", "C", 8, 8)), _w()), gc.GraphError,
     r"conv2d: axis 1 of x \(N, C, 8, 8\) must have a static size, got C"),
    (lambda: gc.conv2d(_x(), _w(("O", 3, 3, 3))), gc.GraphError,
     r"conv2d: axis 0 of w \(O, 3, 3, 3\) must have a static size, got O"),
    (lambda: gc.conv2d(_x(), _w((4, 1, 3, 3)), groups=2), gc.GraphError,
     r"conv2d: x has 3 channels but w expects 1 x groups 2 = 2: x \(2, 3, 8, 8\), "
     r"w \(4, 1, 3, 3\)"),
    (lambda: gc.conv2d(_x((2, 4, 8, 8)), _w((3, 2, 3, 3)), groups=2), gc.GraphError,
     r"conv2d: w's output channels \(3\) must be divisible by groups 2"),
    (lambda: gc.conv2d(_x(), _w(), groups=0), gc.GraphError,
     r"conv2d: groups must be a positive int, got 0"),
    (lambda: gc.conv2d(_x(), _w(), groups=1.0), gc.GraphError,
     r"conv2d: groups must be a positive int, got 1.0"),
    (lambda: gc.conv2d(_x(), _w(), dilation=0), gc.GraphError,
     r"conv2d: dilation must be at least 1, got 0"),
    (lambda: gc.conv2d(_x(), _w(), dilation=(1, 2, 3)), gc.GraphError,
     r"conv2d: dilation must be an int or a pair of ints, got \(1, 2, 3\)"),
    (lambda: gc.conv2d(_x(), _w(), dilation=4), gc.GraphError,
     r"conv2d: kernel 3x3 with dilation \(4, 4\) \(spanning 9x9\) is larger than the "
     r"padded input: \(2, 3, 8, 8\) with padding \(0, 0\)"),
    (lambda: gc.conv2d(_x(), _w(), padding="same", stride=2), gc.GraphError,
     r"conv2d: padding='same' needs stride 1 \(PyTorch does not support it for strided "
     r"convolutions\), got stride \(2, 2\)"),
    (lambda: gc.conv2d(_x(), _w(), padding="full"), gc.GraphError,
     r"conv2d: padding must be an int, a tuple, 'valid' or 'same', got 'full'"),
    (lambda: gc.conv2d(_x(), _w(), padding=((1, -1), (0, 0))), gc.GraphError,
     r"conv2d: padding must be at least 0, got \(\(1, -1\), \(0, 0\)\)"),
    (lambda: gc.conv2d(_x(), _w(), padding=1, padding_mode="mirror"), gc.GraphError,
     r"conv2d: padding_mode must be one of zeros, reflect, replicate, circular, got "
     r"'mirror'"),
    (lambda: gc.conv2d(_x(), _w(), padding=8, padding_mode="reflect"), gc.GraphError,
     r"conv2d: reflect padding \(8, 8\) of axis 2 must be smaller than its size 8"),
    (lambda: gc.conv2d(_x(), _w(), padding=(0, 9), padding_mode="circular"), gc.GraphError,
     r"conv2d: circular padding \(9, 9\) of axis 3 must be at most its size 8"),
    (lambda: gc.conv1d(_x((2, 3, 8)), _w((4, 3, 3)), groups=2), gc.GraphError,
     r"conv1d: x has 3 channels but w expects 3 x groups 2 = 6"),
    (lambda: gc.conv1d(_x((2, 3, 8)), _w((4, 3, 3)), dilation=4), gc.GraphError,
     r"conv1d: kernel 3 with dilation 4 \(spanning 9\) is longer than the padded input: "
     r"\(2, 3, 8\) with padding 0"),
    (lambda: gc.conv1d(_x((2, 3, 8)), _w((4, 3, 3)), padding=(1, 2, 3)), gc.GraphError,
     r"conv1d: padding must be an int, a \(before, after\) pair, 'valid' or 'same', got "
     r"\(1, 2, 3\)"),
    (lambda: gc.conv1d(_x((2, 3, 8)), _w((4, 3, 3)), stride=(2, 2)), gc.GraphError,
     r"conv1d: stride must be an int of at least 1, got \(2, 2\)"),
    (lambda: gc.conv1d(_x(), _w((4, 3, 3))), gc.GraphError,
     r"conv1d: x must be 3-D \(NCL / OCK\), got shape \(2, 3, 8, 8\)"),
])
def test_build_errors(build, error, message):
    with pytest.raises(error, match=message + r".*" + HERE):
        build()


ATTRS = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)


@pytest.mark.parametrize("build,message", [
    (lambda: gc.Node.make("conv2d_grad_input", (_x((2, 4, 5, 5)), _w()), input_shape=(8, 8),
                          **ATTRS),
     r"conv2d_grad_input: g of shape \(2, 4, 5, 5\) does not have the output size \(6, 6\)"),
    (lambda: gc.Node.make("conv2d_grad_input", (_x((2, 5, 6, 6)), _w()), input_shape=(8, 8),
                          **ATTRS),
     r"conv2d_grad_input: g has 5 channels but w has 4 outputs"),
    (lambda: gc.Node.make("conv2d_grad_weight", (_x(), _x((3, 4, 6, 6))), kernel=(3, 3),
                          **ATTRS),
     r"conv2d_grad_weight: x and g differ in batch size"),
    (lambda: gc.Node.make("conv2d_grad_weight", (_x(), _x((2, 4, 6, 6))), kernel=(3, 3),
                          **{**ATTRS, "stride": (2, 2)}),
     r"conv2d_grad_weight: g of shape \(2, 4, 6, 6\) does not have the output size \(3, 3\)"),
    (lambda: gc.Node.make("conv2d", (_x(), _w()), **{**ATTRS, "stride": (0, 1)}),
     r"conv2d: stride must be at least 1, got \(0, 1\)"),
    (lambda: gc.Node.make("conv2d", (_x(), _w()), stride=(1, 1), padding=(0, 0)),
     r"conv2d: the dilation attribute is missing"),
    (lambda: gc.Node.make("conv2d", (_x(), _w()), **{**ATTRS, "groups": 0}),
     r"conv2d: groups must be a positive int, got 0"),
    (lambda: gc.Node.make("conv2d_grad_input", (_x((2, 4, 6, 6)), _w((4, 3, 3, 3))),
                          input_shape=(8, 8), **{**ATTRS, "groups": 3}),
     r"conv2d_grad_input: w's output channels \(4\) must be divisible by groups 3"),
    (lambda: gc.Node.make("conv2d_grad_weight", (_x((2, 4, 8, 8)), _x((2, 6, 6, 6))),
                          kernel=(3, 3), **{**ATTRS, "groups": 4}),
     r"conv2d_grad_weight: g's channels \(6\) must be divisible by groups 4"),
])
def test_gradient_op_build_errors(build, message):
    with pytest.raises(gc.GraphError, match=message):
        build()
