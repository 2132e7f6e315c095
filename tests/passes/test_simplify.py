import numpy as np
import pytest

import graphc as gc
from graphc.passes.simplify import simplify

from .helpers import ops, program, run

X = np.array([[-3.0, -0.5, 0.0], [0.25, 2.0, 40.0]], np.float32)


def simplified(out, *inputs):
    before = program([out], inputs)
    after = simplify(before)
    return before, after, after.outputs[0]


@pytest.mark.parametrize("build", [lambda x: x * 1.0, lambda x: 1.0 * x, lambda x: x + (-0.0),
                                   lambda x: x - 0.0, lambda x: x / 1.0, lambda x: x ** 1.0,
                                   lambda x: gc.neg(gc.neg(x)), lambda x: gc.log(gc.exp(x)),
                                   lambda x: gc.exp(gc.log(gc.exp(x))) - gc.exp(x) + x])
def test_identities_reduce_to_the_operand(build):
    x = gc.input("x", (2, 3))
    _, after, out = simplified(build(x), x)
    if out.op == "add":  # the last case: exp(log(exp x)) -> exp x, leaving (e - e) + x
        assert out.inputs[0].op == "sub" and out.inputs[0].inputs[0] is out.inputs[0].inputs[1]
    else:
        assert out is x


def test_float_times_zero_is_kept_for_nan_semantics():
    x = gc.input("x", (3,))
    before, after, out = simplified(x * 0.0, x)
    assert out.op == "mul"
    got = run(after, np.array([np.nan, np.inf, 1.0], np.float32))[0]
    np.testing.assert_array_equal(got, [np.nan, np.nan, 0.0])


def test_float_plus_zero_is_kept_for_the_sign_of_zero():
    x = gc.input("x", (2,))
    before, after, out = simplified(1.0 / (x + 0.0), x)
    assert out.op == "div" and out.inputs[1].op == "add"
    np.testing.assert_array_equal(run(after, np.array([-0.0, 0.0], np.float32))[0],
                                  [np.inf, np.inf])  # -0.0 + 0.0 is +0.0


def test_int_times_zero_is_zero():
    i = gc.input("i", (3,), dtype="int32")
    _, after, out = simplified(i * 0 + i, i)
    assert out is i


def test_exp_log_needs_a_nonnegative_operand():
    x = gc.input("x", (3,))
    _, _, out = simplified(gc.exp(gc.log(x)), x)
    assert out.op == "exp"
    _, _, out = simplified(gc.exp(gc.log(gc.relu(x))), x)
    assert out.op == "relu"


def test_view_chains_collapse():
    x = gc.input("x", (2, 3, 4))
    _, _, out = simplified(gc.transpose(gc.transpose(x, (1, 0, 2)), (1, 0, 2)), x)
    assert out is x
    _, _, out = simplified(gc.transpose(gc.transpose(x, (1, 2, 0)), (2, 0, 1)) * 1.0, x)
    assert out is x
    _, _, out = simplified(gc.reshape(gc.reshape(x, (6, 4)), (24,)), x)
    assert out.op == "reshape" and out.inputs[0] is x
    _, _, out = simplified(gc.reshape(gc.reshape(x, (6, 4)), (2, 3, 4)), x)
    assert out is x


def test_broadcast_operands_use_numpy_broadcasting():
    x = gc.input("x", ("N", 3))
    b = gc.input("b", (3,))
    two = gc.broadcast_to(gc.constant(np.float32(2.0)), x.shape)
    before, after, out = simplified(x * two + gc.broadcast_to(b, x.shape), x, b)
    assert "broadcast_to" not in ops(after)
    bs = np.array([1.0, 2.0, 3.0], np.float32)
    binding = {x.shape[0]: 2}
    np.testing.assert_array_equal(run(before, X, bs, binding=binding)[0],
                                  run(after, X, bs, binding=binding)[0])


def test_log_softmax_replaces_log_of_softmax():
    x = gc.input("x", (2, 3))
    before, after, out = simplified(gc.log(gc.softmax(x)), x)
    assert out is simplify(program([gc.log_softmax(x)], [x])).outputs[0]
    wide = X * 30.0  # softmax underflows to 0 here: log(0) = -inf unoptimized
    assert np.isinf(run(before, wide)[0]).any()
    expected = wide - wide.max(1, keepdims=True)
    expected = expected - np.log(np.exp(expected).sum(1, keepdims=True))
    np.testing.assert_allclose(run(after, wide)[0], expected, rtol=1e-6)


def test_stable_sigmoid_and_binary_cross_entropy():
    x = gc.input("x", (2, 3))
    _, _, out = simplified(1.0 / (1.0 + gc.exp(-x)), x)
    assert out.op == "sigmoid" and out.inputs[0] is x
    t = gc.input("t", (2, 3))
    bce = -(t * gc.log(gc.sigmoid(x)) + (1.0 - t) * gc.log(1.0 - gc.sigmoid(x)))
    before, after, _ = simplified(bce, x, t)
    assert "sigmoid" not in ops(after)
    logits = X * 10.0
    targets = (X > 0).astype(np.float32)
    got = run(after, logits, targets)[0]
    wide = logits.astype(np.float64)
    exact = targets * np.logaddexp(0, -wide) + (1 - targets) * np.logaddexp(0, wide)
    assert np.isfinite(got).all()
    assert not np.isfinite(run(before, logits, targets)[0]).all()  # log(0) unoptimized
    # float32 log(1 + e) is 0 for e below float32's epsilon: an absolute error under 1e-7
    np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-7)


def test_softplus_rewrite_terminates():
    x = gc.input("x", (2, 3))
    _, after, out = simplified(gc.log(1.0 + gc.exp(x)), x)
    got = run(after, X * 10.0)[0]
    # float32 log(1 + e) is 0 for e below float32's epsilon: an absolute error under 1e-7
    np.testing.assert_allclose(got, np.logaddexp(0, X.astype(np.float64) * 10), rtol=1e-6,
                               atol=1e-7)


def test_slice_gradients_of_a_split_become_one_concatenation():
    """The gradient of q, k, v sliced from one value: concat, not slice_grads summed."""
    x = gc.input("x", (3, 4, 5), "float64")
    w = gc.input("w", (3, 4, 5), "float64")
    parts = [x[i] * w[i] for i in range(3)]
    loss = gc.sum(parts[2] * parts[0] + gc.sin(parts[1]))
    (dx,) = gc.grad(loss, [x])
    before, after, out = simplified(dx, x, w)
    kinds = set(ops(after))
    assert "slice_grad" not in kinds and "concat" in kinds
    rng = np.random.default_rng(0)
    args = [rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 4, 5))]
    np.testing.assert_allclose(run(after, *args)[0], run(before, *args)[0], rtol=1e-12)


def test_slice_gradients_that_leave_a_gap_stay():
    x = gc.input("x", (6, 2), "float64")
    (dx,) = gc.grad(gc.sum(x[0:2] * 2.0) + gc.sum(x[3:6] * 3.0), [x])
    before, after, out = simplified(dx, x)
    assert "concat" not in ops(after)
    args = [np.arange(12.0).reshape(6, 2)]
    np.testing.assert_array_equal(run(after, *args)[0], run(before, *args)[0])


def test_a_transposed_concat_is_a_concat_of_transposes():
    a, b = gc.input("a", (2, 3, 4), "float64"), gc.input("b", (2, 5, 4), "float64")
    before, after, out = simplified(gc.transpose(gc.concat([a, gc.concat([b, a], 1)], 1),
                                                 (2, 1, 0)), a, b)
    assert out.op == "concat" and out.attrs["axis"] == 1 and len(out.inputs) == 3
    assert all(i.op == "transpose" for i in out.inputs)
    args = [np.arange(24.0).reshape(2, 3, 4), np.arange(40.0).reshape(2, 5, 4)]
    np.testing.assert_array_equal(run(after, *args)[0], run(before, *args)[0])
