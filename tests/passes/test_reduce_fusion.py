import numpy as np

import graphc as gc
from graphc.passes import optimize
from graphc.passes.reduce_fusion import reduce_fusion
from graphc.passes.report import kernels

from .helpers import program, run

X = np.array([[1.0, -2.0, 3.0, 0.5], [40.0, 0.0, -1.0, 2.0]], np.float32)


def kernel_ops(prog):
    return [n.op for n in kernels(prog.graph)]


def test_softmax_is_three_kernels_bit_for_bit():
    x = gc.input("x", ("N", 4))
    before = program([gc.softmax(x)], [x])
    after = optimize(before)
    assert kernel_ops(after) == ["max", "fused_reduce", "fused"]  # max of an input: plain
    assert kernels(after.graph)[1].attrs["kind"] == "sum"
    binding = {x.shape[0]: 2}
    np.testing.assert_array_equal(run(before, X, binding=binding)[0],
                                  run(after, X, binding=binding)[0])


def test_layer_norm_is_four_kernels():
    x = gc.input("x", (2, 4))
    w, b = gc.input("w", (4,)), gc.input("b", (4,))
    before = program([gc.layer_norm(x, w, b)], [x, w, b])
    after = optimize(before)
    # mean, variance, sqrt(variance + eps) once per row, then the normalized output
    assert kernel_ops(after) == ["mean", "fused_reduce", "fused", "fused"]
    assert kernels(after.graph)[2].shape == (2, 1)
    args = [X, np.array([1, 2, 3, 4], np.float32), np.array([0, 1, 0, -1], np.float32)]
    np.testing.assert_array_equal(run(before, *args)[0], run(after, *args)[0])


def test_a_value_needed_stored_is_reduced_from_its_store():
    a, w = gc.input("a", (2, 4)), gc.input("w", (4, 3))
    h = gc.tanh(a) * 2.0
    before = program([gc.sum(h, 1), h @ w], [a, w])
    after = reduce_fusion(before)
    assert after.outputs[0].op == "sum" and after.outputs[0].inputs[0] is h


def test_fused_reduce_of_ints_follows_numpy_dtype_rules():
    i = gc.input("i", (2, 3), "int32")
    before = program([gc.sum(i * 3, 0), gc.mean(i + 1), gc.max(gc.abs(i), 1, keepdims=True)],
                     [i])
    after = reduce_fusion(before)
    assert [o.op for o in after.outputs] == ["fused_reduce"] * 3
    iv = np.array([[1, -2, 3], [4, 5, -6]], np.int32)
    for got, want in zip(run(after, iv), run(before, iv)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_fused_reduce_gradient_matches_the_unfused_one():
    x = gc.input("x", (2, 4), "float64")
    for build in (lambda v: gc.sum(gc.exp(v) * v, 1), lambda v: gc.max(gc.sin(v), 0),
                  lambda v: gc.mean(v * v, 1, keepdims=True)):
        plain = build(x)
        fused = reduce_fusion(program([plain], [x])).outputs[0]
        assert fused.op == "fused_reduce"
        weights = gc.constant(np.arange(1.0, 1.0 + np.prod(plain.shape)).reshape(plain.shape))
        (g_fused,) = gc.grad(gc.sum(fused * weights), [x])
        (g_plain,) = gc.grad(gc.sum(plain * weights), [x])
        xs = X.astype(np.float64) / 10
        np.testing.assert_allclose(run(program([g_fused], [x]), xs)[0],
                                   run(program([g_plain], [x]), xs)[0], rtol=1e-12)


def test_a_big_shared_exp_is_stored_once_and_reduced_from_its_store():
    """A large softmax and its gradient: exp(x - max) has several consumers, so it is
    stored once; neither the sum nor the gradient's reduction computes it again."""
    x, g = gc.input("x", (64, 512)), gc.input("g", (64, 512))
    y = gc.softmax(x)
    (gx,) = gc.grad(gc.sum(y * g), [x])
    before = program([y, gx], [x, g])
    after = optimize(before)
    ops = kernel_ops(after)
    assert ops.count("sum") == 1, ops
    for node in kernels(after.graph):
        if node.op == "fused_reduce":
            assert "exp" not in str(node.attrs["expr"])
    rng = np.random.default_rng(0)
    args = [rng.normal(size=(64, 512)).astype(np.float32) for _ in range(2)]
    for got, expected in zip(run(after, *args), run(before, *args)):
        np.testing.assert_array_equal(got, expected)


def test_a_small_shared_exp_is_still_recomputed_in_the_reduction():
    x = gc.input("x", (8, 10))
    before = program([gc.softmax(x)], [x])
    after = optimize(before)
    assert kernel_ops(after) == ["max", "fused_reduce", "fused"]
