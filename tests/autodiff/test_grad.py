"""gc.grad: conventions, errors, gradients as ordinary graph, and second order."""

import numpy as np
import pytest

import graphc as gc


def grads_at(fn, values, dtype="float64"):
    """Gradient of fn(x) (a scalar) at the given points, one input per point list."""
    x = gc.input("x", (len(values),), dtype)
    (g,) = gc.grad(fn(x), [x])
    return gc.compile([x], g, backend="numpy")(np.asarray(values, dtype))


def test_conventions_at_kinks():
    np.testing.assert_array_equal(grads_at(lambda x: gc.relu(x).sum(), [0.0, 1.0, -1.0]),
                                  [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(grads_at(lambda x: gc.abs(x).sum(), [0.0, 2.0, -2.0]),
                                  [0.0, 1.0, -1.0])
    np.testing.assert_array_equal(grads_at(lambda x: (gc.sign(x) * 3.0).sum(), [0.0, 2.0]),
                                  [0.0, 0.0])
    np.testing.assert_array_equal(grads_at(lambda x: gc.leaky_relu(x, 0.1).sum(), [0.0, 1.0]),
                                  [0.1, 1.0])
    # clip passes the gradient inside its bounds, bounds included (as torch.clamp)
    np.testing.assert_array_equal(
        grads_at(lambda x: gc.clip(x, -1.0, 1.0).sum(), [-1.0, 1.0, 0.0, 2.0, -2.0]),
        [1.0, 1.0, 1.0, 0.0, 0.0])


def test_ties_share_the_gradient():
    np.testing.assert_array_equal(grads_at(lambda x: gc.max(x), [1.0, 3.0, 3.0]),
                                  [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(grads_at(lambda x: gc.maximum(x, 1.0).sum(), [1.0, 2.0, 0.0]),
                                  [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(grads_at(lambda x: gc.minimum(x, 1.0).sum(), [1.0, 2.0, 0.0]),
                                  [0.5, 0.0, 1.0])


def test_comparisons_argmax_and_ints_carry_no_gradient():
    x = gc.input("x", (3,), "float64")
    with pytest.raises(ValueError, match="does not depend on 'x'"):
        gc.grad(gc.sum(gc.cast(x > 0.0, "float64")), [x])
    with pytest.raises(ValueError, match="does not depend on 'x'"):
        gc.grad(gc.cast(gc.argmax(x), "float64"), [x])
    with pytest.raises(ValueError, match="does not depend on 'x'"):
        gc.grad(gc.cast(gc.cast(x, "int32"), "float64").sum(), [x])
    (g,) = gc.grad(gc.cast(gc.argmax(x), "float64"), [x], allow_unused=True)
    np.testing.assert_array_equal(gc.compile([x], g, backend="numpy")(np.ones(3)), np.zeros(3))


def test_unused_wrt_raises_by_default_and_gives_zeros_on_request():
    x = gc.input("x", (2,), "float64")
    w = gc.param("w", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"does not depend on 'w' \(pass allow_unused=True"):
        gc.grad(x.sum(), [w])
    (g,) = gc.grad(x.sum(), [w], allow_unused=True)
    assert g.shape == (2, 3)
    np.testing.assert_array_equal(gc.compile([], g, backend="numpy")(), np.zeros((2, 3)))


@pytest.mark.parametrize("build, error, message", [
    (lambda x: gc.grad(x, [x]), ValueError, r"must be a scalar \(shape \(\)\), got shape \(3,\)"),
    (lambda x: gc.grad(gc.argmax(x), [x]), TypeError, "must be float, got int64"),
    (lambda x: gc.grad(x.sum(), x), TypeError, "wrt must be a list"),
    (lambda x: gc.grad(x.sum(), [gc.input("i", (2,), "int32")]), TypeError,
     "only float values have gradients"),
    (lambda x: gc.grad(3.0, [x]), TypeError, "expected a graph value"),
])
def test_bad_grad_calls(build, error, message):
    x = gc.input("x", (3,), "float64")
    with pytest.raises(error, match=message):
        build(x)


def test_gradients_are_tagged_drawable_and_compilable_by_any_input_set():
    x = gc.input("x", ("N", 3), "float64")
    w = gc.param("w", np.ones(3))
    loss = gc.sum(gc.tanh(x @ w))
    (gw,) = gc.grad(loss, [w])
    assert gw.tag == "grad" and loss.tag is None
    dot = gc.to_dot(gw)
    assert "grad" in dot
    a = np.random.default_rng(0).normal(size=(4, 3))
    expected = ((1 - np.tanh(a @ np.ones(3)) ** 2)[:, None] * a).sum(0)
    np.testing.assert_allclose(gc.compile([x], gw, backend="numpy")(a), expected, rtol=1e-12)


def test_gradient_with_respect_to_inputs_and_intermediates():
    x = gc.input("x", (3,), "float64")
    h = gc.exp(x)
    loss = (h * h).sum()
    gx, gh = gc.grad(loss, [x, h])
    a = np.array([0.1, -0.2, 0.3])
    out_x, out_h = gc.compile([x], [gx, gh], backend="numpy")(a)
    np.testing.assert_allclose(out_h, 2 * np.exp(a), rtol=1e-14)
    np.testing.assert_allclose(out_x, 2 * np.exp(2 * a), rtol=1e-14)


def test_broadcast_operands_get_summed_gradients():
    x = gc.input("x", (4, 3), "float64")
    b = gc.param("b", np.zeros(3))
    c = gc.param("c", np.zeros((4, 1)))
    gb, gc_ = gc.grad(((x + b) * (x + c)).sum(), [b, c])
    a = np.random.default_rng(1).normal(size=(4, 3))
    out_b, out_c = gc.compile([x], [gb, gc_], backend="numpy")(a)
    np.testing.assert_allclose(out_b, a.sum(0), rtol=1e-12)
    np.testing.assert_allclose(out_c, a.sum(1, keepdims=True), rtol=1e-12)


def test_float32_gradients_stay_float32():
    x = gc.input("x", (3,), "float32")
    w = gc.param("w", np.ones(3, np.float32))
    (gw,) = gc.grad(gc.sum(gc.sigmoid(x * w) * 0.5), [w])
    assert gw.dtype == np.float32


def test_symbolic_batch_gradient_works_for_any_batch():
    x = gc.input("x", ("N", 2), "float64")
    w = gc.param("w", np.array([1.0, -1.0]))
    (gw,) = gc.grad(gc.mean(x @ w), [w])
    f = gc.compile([x], gw, backend="numpy")
    for n in (1, 3, 7):
        a = np.arange(2.0 * n).reshape(n, 2)
        np.testing.assert_allclose(f(a), a.mean(0), rtol=1e-14)


def test_second_derivatives_of_elementwise_and_reductions():
    x = gc.input("x", (3,), "float64")
    (g,) = gc.grad(gc.sum(gc.sin(x) * x), [x])
    (h,) = gc.grad(gc.sum(g), [x])
    a = np.array([0.3, -1.0, 2.0])
    # d/dx (sin x + x cos x) = 2 cos x - x sin x
    np.testing.assert_allclose(gc.compile([x], h, backend="numpy")(a),
                               2 * np.cos(a) - a * np.sin(a), rtol=1e-12)


def test_hessian_vector_product_of_an_mlp_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = gc.input("x", (5, 4), "float64")
    y = gc.input("y", (5,), "int32")
    W1 = gc.param("W1", rng.normal(0, 0.5, (4, 6)))
    b1 = gc.param("b1", rng.normal(0, 0.1, 6))
    W2 = gc.param("W2", rng.normal(0, 0.5, (6, 3)))
    params = [W1, b1, W2]
    loss = gc.softmax_cross_entropy(gc.tanh(x @ W1 + b1) @ W2, y)
    grads = gc.grad(loss, params)
    vectors = [gc.input(f"v{k}", p.shape, "float64") for k, p in enumerate(params)]
    dot = gc.sum(grads[0] * vectors[0])
    for g, v in zip(grads[1:], vectors[1:]):
        dot = dot + gc.sum(g * v)
    hvp = gc.grad(dot, params)
    xs, ys = rng.normal(size=(5, 4)), rng.integers(0, 3, 5).astype(np.int32)
    vs = [rng.normal(size=p.value.shape) for p in params]
    analytic = gc.compile([x, y] + vectors, hvp, backend="numpy")(xs, ys, *vs)
    grad_fn = gc.compile([x, y], grads, backend="numpy")
    eps = 1e-5
    originals = [p.value.copy() for p in params]

    def grads_shifted(sign):
        for p, o, v in zip(params, originals, vs):
            p.value = o + sign * eps * v
        return grad_fn(xs, ys)

    plus, minus = grads_shifted(1), grads_shifted(-1)
    for p, o in zip(params, originals):
        p.value = o
    for a, gp, gm in zip(analytic, plus, minus):
        np.testing.assert_allclose(a, (gp - gm) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_gradient_nodes_know_the_forward_op_they_differentiate():
    """Every node gc.grad builds is recorded with the forward node whose gradient rule (or
    adjoint sum) built it; forward nodes and nodes shared with the forward graph are not."""
    from graphc.ir.graph import Graph
    from graphc.ir.provenance import gradient_of

    x = gc.input("x", (3,))
    w = gc.param("w_prov", np.ones(3, np.float32))
    h = gc.sqrt(x * w)
    loss = gc.sum(gc.tanh(h) + h)  # h has two consumers: its adjoint is a sum
    (gw,) = gc.grad(loss, [w])
    forward = set(Graph([loss]).nodes)
    built = [n for n in Graph([gw]).nodes if n not in forward and n.op != "constant"]
    assert built and all(gradient_of(n) in forward for n in built)
    assert all(gradient_of(n) is None for n in forward)
    ops_of = {gradient_of(n).op for n in built}
    assert {"sqrt", "mul", "tanh"} <= ops_of
    assert gradient_of(gw).op == "mul"  # d(x * w)/dw = x * adjoint: the last rule applied
