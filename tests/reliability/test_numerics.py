"""Extreme but finite inputs give finite results wherever the math is finite, on every
backend, the same as the NumPy reference."""

import numpy as np
import pytest

import graphc as gc
from tests.backends_available import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_cross_entropy_with_huge_logits(backend, dtype):
    logits = gc.input("logits", (3, 3), dtype)
    labels = gc.input("labels", (3,), "int32")
    loss = gc.softmax_cross_entropy(logits, labels)
    (g,) = gc.grad(loss, [logits])
    f = gc.compile([logits, labels], [gc.softmax(logits), gc.log_softmax(logits), loss, g],
                   backend=backend)
    a = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, 0.0]], dtype)
    y = np.array([1, 0, 2], np.int32)
    sm, lsm, value, grad = f(a, y)
    for out in (sm, lsm, value, grad):
        assert np.all(np.isfinite(out))
    np.testing.assert_allclose(sm[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(sm[2], [0.5, 0.5, 0.0], atol=1e-7)
    assert value == pytest.approx((2e4 + np.log(3) + (1e4 + np.log(2))) / 3, rel=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_and_its_gradient_at_plus_minus_1e3(backend):
    x = gc.input("x", (4,), "float32")
    s = gc.sigmoid(x)
    (g,) = gc.grad(gc.sum(s), [x])
    bce = gc.binary_cross_entropy_with_logits(x, gc.constant(np.array([0, 1, 0, 1], np.float32)))
    f = gc.compile([x], [s, g, bce], backend=backend)
    values, grads, loss = f(np.array([-1e3, 1e3, 1e3, -1e3], np.float32))
    np.testing.assert_array_equal(values, [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(grads, [0.0, 0.0, 0.0, 0.0])
    assert np.isfinite(loss) and loss == pytest.approx(500.0, rel=1e-6)  # two of four terms are 1e3


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_of_zero_is_minus_infinity_not_an_error(backend):
    x = gc.input("x", (2,), "float64")
    f = gc.compile([x], gc.log(x), backend=backend)
    np.testing.assert_array_equal(f(np.array([0.0, 1.0])), [-np.inf, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_norm_of_a_constant_row_is_finite(backend):
    x = gc.input("x", (2, 4), "float32")
    w = gc.param("w", np.ones(4, np.float32))
    out = gc.layer_norm(x, w, None)
    (gw,) = gc.grad(gc.sum(out * out), [w])
    f = gc.compile([x], [out, gw], backend=backend)
    y, g = f(np.array([[3.0] * 4, [1.0, 2.0, 3.0, 4.0]], np.float32))
    np.testing.assert_array_equal(y[0], np.zeros(4))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))


# ----- reductions over a zero-length axis (issue 13, item 1) ------------------------------
EMPTY_REDUCTIONS = [((0, 3), 0), ((2, 0, 4), 1), ((2, 0, 4), (0, 1)), ((3, 0), 1),
                    ((0, 3), None), ((2, 0, 4), 1, True)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("case", EMPTY_REDUCTIONS, ids=str)
def test_sum_and_mean_over_an_empty_axis_are_zero_and_nan(backend, optimize, case):
    """NumPy's values (sum 0, mean 0/0 = NaN), plain and fused with an elementwise
    producer (whose value at a missing element would be 1, not 0)."""
    shape, axis, keepdims = (*case, False)[:3]
    x = gc.input("x", shape, "float32")
    i = gc.input("i", shape, "int32")
    outs = [gc.sum(x, axis, keepdims), gc.mean(x, axis, keepdims),
            gc.sum(x * x + 1.0, axis, keepdims), gc.mean(gc.exp(x), axis, keepdims),
            gc.sum(i, axis, keepdims), gc.mean(i, axis, keepdims)]
    f = gc.compile([x, i], outs, backend=backend, optimize=optimize)
    a, b = np.zeros(shape, np.float32), np.zeros(shape, np.int32)
    expected = [np.zeros(o.shape, o.dtype) for o in outs]
    for k in (1, 3, 5):
        expected[k][...] = np.nan
    for _ in range(3):  # a new call may find other garbage
        for got, want, node in zip(f(a, b), expected, outs):
            assert got.dtype == node.dtype
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_over_an_empty_axis_is_an_error_naming_the_op_and_line(backend, op):
    x = gc.input("x", ("N", 3), "float32")
    f = gc.compile([x], getattr(gc, op)(x, axis=0), backend=backend)
    with pytest.raises(ValueError, match=rf"{op}: .*zero-size.*\(0, 3\).*test_numerics.py:\d+"):
        f(np.zeros((0, 3), np.float32))
    np.testing.assert_array_equal(f(np.ones((2, 3), np.float32)), np.ones(3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_argmax_over_a_nonempty_axis_of_an_empty_array_is_empty(backend):
    x = gc.input("x", ("N", 3), "float32")
    f = gc.compile([x], [gc.argmax(x, axis=1), gc.max(x, axis=1)], backend=backend)
    rows, maxima = f(np.zeros((0, 3), np.float32))
    assert rows.shape == (0,) and rows.dtype == np.int64 and maxima.shape == (0,)
    g = gc.compile([x], gc.argmax(x, axis=0), backend=backend)
    with pytest.raises(ValueError, match=r"argmax: .*zero-size.*test_numerics.py:\d+"):
        g(np.zeros((0, 3), np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("loss_kind", ["mse", "sum", "mean_of_mean", "cross_entropy"])
def test_an_empty_batch_training_step_leaves_params_unchanged(backend, optimize, loss_kind):
    """A batch of 0 rows: every gradient is a sum over no rows, 0, so SGD changes nothing
    (the loss, a mean over no rows, is NaN, as in NumPy and PyTorch)."""
    x = gc.input("x", ("N", 3), "float32")
    W = gc.param("W", np.full((3, 2), 0.5, np.float32))
    b = gc.param("b", np.full(2, 0.25, np.float32))
    y = x @ W + b
    if loss_kind == "cross_entropy":
        t = gc.input("t", ("N",), "int32")
        loss = gc.softmax_cross_entropy(y, t)
    else:
        t = gc.input("t", ("N", 2), "float32")
        loss = {"mse": lambda: gc.mse_loss(y, t), "sum": lambda: gc.sum(y * t),
                "mean_of_mean": lambda: gc.sum(gc.mean(y * t, axis=0))}[loss_kind]()
    gW, gb = gc.grad(loss, [W, b])
    step = gc.compile([x, t], [loss, gW, gb], updates={W: W - 0.1 * gW, b: b - 0.1 * gb},
                      backend=backend, optimize=optimize)
    labels = np.zeros((0,) + tuple(t.shape[1:]), t.dtype)
    for _ in range(3):
        value, grad_w, grad_b = step(np.zeros((0, 3), np.float32), labels)
        np.testing.assert_array_equal(grad_w, np.zeros((3, 2)))
        np.testing.assert_array_equal(grad_b, np.zeros(2))
        assert np.isnan(value) == (loss_kind != "sum")
        np.testing.assert_array_equal(W.value, np.full((3, 2), 0.5))
        np.testing.assert_array_equal(b.value, np.full(2, 0.25))


# ----- gradients where sympy's derivative leaves the reals (issue 13, item 2) ---------------
def _grads(backend, build, *arrays):
    """The gradients of sum(build(*inputs)) w.r.t. the float64 inputs fed `arrays`."""
    inputs = [gc.input(f"v{k}", a.shape, "float64") for k, a in enumerate(arrays)]
    grads = gc.grad(gc.sum(build(*inputs)), inputs)
    return gc.compile(inputs, grads, backend=backend)(*arrays)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pow_gradient_at_base_zero_and_negative_bases_is_pytorchs(backend):
    """PyTorch's rules: d/dx = y x**(y-1), 0 where y == 0; d/dy = x**y log x, 0 where
    x == 0 and y >= 0 (values printed by torch 2.13)."""
    dx, dy = _grads(backend, lambda x, y: x ** y, np.zeros(3), np.array([0.0, 0.3, -0.3]))
    np.testing.assert_array_equal(dx, [0.0, np.inf, -np.inf])
    np.testing.assert_array_equal(dy, [0.0, 0.0, -np.inf])
    dx, dy = _grads(backend, lambda x, y: x ** y, np.full(3, -2.0), np.array([0.0, 2.0, 0.5]))
    np.testing.assert_array_equal(dx, [0.0, -4.0, np.nan])
    np.testing.assert_array_equal(dy, [np.nan] * 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pow_gradient_with_a_constant_base_or_exponent(backend):
    e = np.array([0.0, 0.5, 2.0, -1.0])
    (g,) = _grads(backend, lambda v: (-2.0) ** v, e)
    np.testing.assert_array_equal(g, [np.nan] * 4)
    (g,) = _grads(backend, lambda v: 0.0 ** v, e)
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0, -np.inf])
    (g,) = _grads(backend, lambda v: 2.0 ** v, e)
    np.testing.assert_allclose(g, 2.0 ** e * np.log(2.0), rtol=1e-15)
    x = np.array([0.0, 1.0, -1.0])
    for exponent, want in [(0.0, [0.0, 0.0, 0.0]), (0.5, [np.inf, 0.5, np.nan]),
                           (-1.0, [-np.inf, -1.0, -1.0]), (3, [0.0, 3.0, 3.0])]:
        (g,) = _grads(backend, lambda v, e=exponent: v ** e, x)
        np.testing.assert_array_equal(g, want, err_msg=f"x ** {exponent}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_of_a_division_by_a_zero_constant_is_infinite(backend):
    """sympy's 1/0 is ComplexInfinity; the graph's is IEEE (PyTorch: inf)."""
    (g,) = _grads(backend, lambda v: v / 0.0, np.array([0.0, 1.0, -1.0]))
    np.testing.assert_array_equal(g, [np.inf] * 3)


def test_pow_gradients_match_central_differences():
    """The explicit rules agree with the derivative where it exists (float64, x > 0 and
    x < 0 with integer exponents), first and second order."""
    rng = np.random.default_rng(0)
    x0 = np.concatenate([rng.uniform(0.2, 3.0, 6), rng.uniform(-3.0, -0.2, 4)])
    y0 = np.concatenate([rng.uniform(-2.0, 2.0, 6), [-2.0, -1.0, 2.0, 3.0]])
    x, y = gc.input("x", (10,), "float64"), gc.input("y", (10,), "float64")
    f = gc.sum(x ** y)
    dx, dy = gc.grad(f, [x, y])
    (dxx,) = gc.grad(gc.sum(dx), [x])
    run = gc.compile([x, y], [f, dx, dy, dxx], backend="numpy")
    h = 1e-6
    _, gx, gy, gxx = run(x0, y0)
    for k in range(10):
        e = np.zeros(10)
        e[k] = h
        fd_x = (run(x0 + e, y0)[0] - run(x0 - e, y0)[0]) / (2 * h)
        fd_xx = (run(x0 + e, y0)[1][k] - run(x0 - e, y0)[1][k]) / (2 * h)
        assert gx[k] == pytest.approx(fd_x, rel=1e-6, abs=1e-8)
        assert gxx[k] == pytest.approx(fd_xx, rel=1e-5, abs=1e-6)
        if x0[k] > 0:
            fd_y = (run(x0, y0 + e)[0] - run(x0, y0 - e)[0]) / (2 * h)
            assert gy[k] == pytest.approx(fd_y, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_derivative_sympy_evaluates_to_a_complex_number_becomes_nan(backend):
    """What a fused kernel's gradient converts (sympy.diff of its body, constants inlined):
    log(-2) = 0.69 + I*pi and 1/0 = zoo are NaN in a graph of reals, not an error."""
    import sympy

    from graphc.ops.scalar import to_graph

    s = sympy.Symbol("s", real=True)
    x = gc.input("x", (3,), "float64")
    exprs = [sympy.diff(sympy.Float(-2.0) ** s, s), s / sympy.Float(0.0)]
    f = gc.compile([x], [to_graph(e, {s: x}, np.float64) for e in exprs], backend=backend)
    for out in f(np.array([0.0, 1.0, -1.0])):
        np.testing.assert_array_equal(out, [np.nan] * 3)


# ----- integer powers with negative exponents (issue 13, item 3) ----------------------------
NEGATIVE_POWER = r"pow: integers to negative integer powers are not allowed"


@pytest.mark.parametrize("exponent", [-2, np.array([1, -1, 2], np.int32)], ids=["-2", "array"])
def test_a_negative_constant_integer_exponent_is_refused_when_the_graph_is_built(exponent):
    i = gc.input("i", (3,), "int32")
    with pytest.raises(ValueError, match=NEGATIVE_POWER + r".*-\d.*test_numerics.py:\d+"):
        i ** exponent  # noqa: B018  (the expression is the test)
    assert (i ** 2).dtype == np.int32 and (i ** -2.0).dtype == np.float64


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimize", [False, True])
def test_a_negative_integer_exponent_computed_at_run_time_raises_at_call_time(backend, optimize):
    """As NumPy (PyTorch refuses a negative scalar exponent too): an error naming the op,
    the exponent's value and the user's line, and no param is updated by the failed call."""
    i, j = gc.input("i", (3,), "int32"), gc.input("j", (3,), "int64")
    p = gc.param("p", np.zeros(3, np.float32))
    powers = [i ** j, i ** (j - 3), (i ** j) * 2 + 1]
    f = gc.compile([i, j], powers, updates={p: p + 1.0}, backend=backend, optimize=optimize)
    base, exponent = np.array([1, -2, 3], np.int32), np.array([3, 4, 5], np.int64)
    want = [base.astype(np.int64) ** exponent, base.astype(np.int64) ** (exponent - 3),
            base.astype(np.int64) ** exponent * 2 + 1]
    for got, expected in zip(f(base, exponent), want):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(p.value, np.ones(3))
    for bad, value in [(np.array([3, 4, 2], np.int64), "-1"), (np.array([0, -5, 3], np.int64),
                                                               "-5")]:
        with pytest.raises(ValueError, match=NEGATIVE_POWER + rf".*{value}.*test_numerics.py"):
            f(base, bad)
        np.testing.assert_array_equal(p.value, np.ones(3))
    assert f(base, exponent)[0].dtype == np.int64


# ----- masked (-inf) logits (issue 13, item 4) ----------------------------------------------
MASKED = np.array([[0.0, -np.inf, 0.0], [-np.inf, 2.0, -np.inf]])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_of_masked_logits_is_finite_as_in_pytorch(backend, dtype):
    """-inf logits (attention masks, constrained decoding) of classes that are not the
    label: loss and gradient are those of the unmasked classes (torch 2.13: 0 and [0, 0] for
    [[0, -inf]], label 0). 0 * log 0 counts 0 for probability targets too."""
    logits = gc.input("logits", (2, 3), dtype)
    labels = gc.input("labels", (2,), "int32")
    probs = gc.input("probs", (2, 3), dtype)
    losses = [gc.softmax_cross_entropy(logits, labels), gc.softmax_cross_entropy(logits, probs)]
    grads = [gc.grad(loss, [logits])[0] for loss in losses]
    f = gc.compile([logits, labels, probs], losses + grads, backend=backend)
    target = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype)
    loss, loss_p, grad, grad_p = f(MASKED.astype(dtype), np.array([2, 1], np.int32), target)
    assert loss == pytest.approx(np.log(2) / 2, rel=1e-6) and loss_p == loss
    want = np.array([[0.25, 0.0, -0.25], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(grad, want, atol=1e-7)
    np.testing.assert_allclose(grad_p, want, atol=1e-7)
    single = gc.input("single", (1, 2), dtype)
    one = gc.softmax_cross_entropy(single, gc.constant(np.array([0], np.int32)))
    g = gc.compile([single], [one, gc.grad(one, [single])[0]], backend=backend)
    value, gradient = g(np.array([[0.0, -np.inf]], dtype))
    assert value == 0.0
    np.testing.assert_array_equal(gradient, [[0.0, 0.0]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_label_smoothing_with_a_masked_logit_is_infinite_with_a_finite_gradient(backend):
    """Smoothing puts mass on the masked class, whose log-probability is -inf (torch 2.13:
    loss inf, gradient [0.05, -0.05] for [[0, -inf]] with smoothing 0.1)."""
    logits = gc.input("logits", (1, 2), "float64")
    loss = gc.softmax_cross_entropy(logits, gc.constant(np.array([0], np.int32)), 0.1)
    (g,) = gc.grad(loss, [logits])
    value, grad = gc.compile([logits], [loss, g], backend=backend)(np.array([[0.0, -np.inf]]))
    assert value == np.inf
    np.testing.assert_allclose(grad, [[0.05, -0.05]], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_and_log_softmax_of_masked_logits_and_their_gradients(backend):
    """Masked entries: probability 0, log-probability -inf, finite gradients (torch 2.13:
    log_softmax's gradient of sum over [[0, -inf]] is [-1, 1]); a row of only -inf is NaN,
    as in PyTorch."""
    x = gc.input("x", (3, 3), "float64")
    w = gc.constant(np.array([1.0, 2.0, 3.0]))
    sm, lsm = gc.softmax(x), gc.log_softmax(x)
    (g_sm,) = gc.grad(gc.sum(sm * w), [x])
    (g_lsm,) = gc.grad(gc.sum(lsm), [x])
    f = gc.compile([x], [sm, lsm, g_sm, g_lsm], backend=backend)
    a = np.vstack([MASKED, np.full((1, 3), -np.inf)])
    p, logp, grad_sm, grad_lsm = f(a)
    np.testing.assert_allclose(p[:2], [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]], atol=1e-15)
    np.testing.assert_allclose(logp[:2], [[-np.log(2), -np.inf, -np.log(2)],
                                          [-np.inf, 0.0, -np.inf]], atol=1e-15)
    np.testing.assert_allclose(grad_sm[:2], [[-0.5, 0.0, 0.5], [0.0, 0.0, 0.0]], atol=1e-15)
    np.testing.assert_allclose(grad_lsm[:2], [[-0.5, 1.0, -0.5], [1.0, -2.0, 1.0]], atol=1e-15)
    assert np.isnan(p[2]).all() and np.isnan(logp[2]).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimize", [False, True])
def test_float_functions_of_ints_in_fused_kernels(backend, optimize):
    """sigmoid/erf/gelu of int values compute in float64, fused or not (the fused NumPy
    evaluator called the references, which truncated them to ints; found by the fuzzer)."""
    import math

    i = gc.input("i", (5,), "int32")
    outs = [gc.erf(i * i), gc.sigmoid(i + 1), gc.gelu(i - 1) * 2.0]
    f = gc.compile([i], outs, backend=backend, optimize=optimize)
    a = np.arange(-2, 3, dtype=np.int32)
    gelu = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in a - 1]
    want = [[math.erf(v * v) for v in a], [1 / (1 + math.exp(-(v + 1))) for v in a],
            [2 * g for g in gelu]]
    for got, expected in zip(f(a), want):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("stride", [1, 2])
def test_an_empty_batch_conv_training_step_leaves_params_unchanged(backend, stride):
    """Every conv gradient path with a batch of 0 (stride 2 takes col2im for the input
    gradient, whose scratch is 0 bytes for an empty batch: the LLVM lowering crashed; found
    by the fuzzer's zero-size programs)."""
    x = gc.input("x", ("N", 16, 12, 12), "float32")
    w = gc.param("w", np.full((32, 16, 3, 3), 0.01, np.float32))
    y = gc.conv2d(x, w, stride=stride, padding=1)
    loss = gc.mean(gc.tanh(y)) + gc.mean(gc.max_pool2d(x, 2))
    gx, gw = gc.grad(loss, [x, w])
    step = gc.compile([x], [loss, gx, gw], updates={w: w - 0.1 * gw}, backend=backend)
    value, grad_x, grad_w = step(np.zeros((0, 16, 12, 12), np.float32))
    assert np.isnan(value) and grad_x.shape == (0, 16, 12, 12)
    np.testing.assert_array_equal(grad_w, np.zeros((32, 16, 3, 3)))
    np.testing.assert_array_equal(w.value, np.full((32, 16, 3, 3), 0.01, np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_int_ops_with_float_coefficients_truncate_inside_fused_kernels(backend):
    """leaky_relu and clip of ints compute in float64 and store ints (NumPy's rules); fused
    into a consumer the truncation was lost: leaky_relu(-4, 0.1) / 2.5 gave -0.16, not 0
    (found by the fuzzer's int programs, seed 5116)."""
    i = gc.input("i", (3,), "int64")
    outs = [gc.leaky_relu(i, 0.1) / 2.5, gc.leaky_relu(i, 0.1) * 2, gc.clip(i, -0.5, 1.5) * 1.5,
            gc.tanh(gc.leaky_relu(i, 0.3))]
    a = np.array([-4, -6, 2])
    want = [np.array([0, 0, 0.8]), np.array([0, 0, 4]), np.array([0, 0, 1.5]),
            np.tanh([-1, -1, 2])]
    for optimize in (False, True):
        got = gc.compile([i], outs, backend=backend, optimize=optimize)(a)
        for g, w, node in zip(got, want, outs):
            assert g.dtype == node.dtype
            np.testing.assert_allclose(g, w, rtol=1e-15, err_msg=f"optimize={optimize}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_of_a_batched_matmul_with_zero_output_columns(backend):
    """A shared 2-D weight with 0 columns: the weight gradient's row reshape had to infer
    -1 next to a 0 and could not (GraphError from gc.grad; found by the fuzzer)."""
    a = gc.input("a", ("B", 3, 4), "float64")
    b = gc.input("b", (4, 0), "float64")
    ga, gb = gc.grad(gc.sum(a @ b) + gc.sum(a * a), [a, b])
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    got_a, got_b = gc.compile([a, b], [ga, gb], backend=backend)(x, np.zeros((4, 0)))
    np.testing.assert_allclose(got_a, 2 * x, rtol=1e-15)
    assert got_b.shape == (4, 0)
