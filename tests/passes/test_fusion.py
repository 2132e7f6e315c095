import numpy as np
import sympy

import graphc as gc
from graphc.ops.scalar import input_symbols
from graphc.passes.fusion import fusion, fusion_groups

from .helpers import ops, program, run

A = np.array([[-1.5, 0.0, 2.0], [np.nan, np.inf, -np.inf]], np.float32)
B = np.array([0.5, -2.0, 3.0], np.float32)


def test_a_chain_with_a_broadcast_operand_is_one_fused_node_bit_for_bit():
    a, b = gc.input("a", (2, 3)), gc.input("b", (3,))
    out = gc.sigmoid(gc.exp(a * b) - a * 0.0) / (a * a + 1.0)
    before = program([out], [a, b])
    after = fusion(before)
    (fused,) = after.outputs
    assert ops(after) == ["input", "input", "fused"]
    assert fused.inputs == (a, b) and fused.dtype == np.float32 and fused.shape == (2, 3)
    assert fused.attrs["expr"].free_symbols == set(input_symbols(2))
    np.testing.assert_array_equal(run(before, A, B)[0], run(after, A, B)[0])  # NaN, inf too


def test_shared_and_smaller_nodes_are_kernels_of_their_own():
    a, b = gc.input("a", (2, 3)), gc.input("b", (3,))
    small = gc.exp(b) * 2.0           # shape (3,): computed once, not per element of (2, 3)
    shared = gc.tanh(a + small)       # two consumers in different kernels: materialized
    out1 = shared * 3.0 + 1.0
    out2 = gc.sum(shared, 0)
    before = program([out1, out2], [a, b])
    groups = fusion_groups(before)
    assert [[n.op for n in g] for g in groups] == [["exp", "mul"], ["add", "tanh"],
                                                    ["mul", "add"]]
    after = fusion(before)
    assert ops(after).count("fused") == 3
    for x, y in zip(run(before, A, B), run(after, A, B)):
        np.testing.assert_array_equal(x, y)


def test_comparisons_where_and_bool_casts_fuse():
    a, b = gc.input("a", (2, 3)), gc.input("b", (3,))
    mask = gc.cast(gc.greater(a, b), "float32")
    out = gc.where(gc.less(a, 0.0), -a, mask * b) + gc.clip(a, -1.0, 1.0)
    before = program([out], [a, b])
    after = fusion(before)
    assert ops(after).count("fused") == 1 and "where" not in ops(after)
    np.testing.assert_array_equal(run(before, A, B)[0], run(after, A, B)[0])


def test_fused_node_format_and_gradient():
    x0, x1 = input_symbols(2)
    a, b = gc.input("a", (2, 3), "float64"), gc.input("b", (3,), "float64")
    with sympy.evaluate(False):
        expr = gc.ops.scalar.Sigmoid(x0 * x1) + sympy.exp(x1) / x0
    fused = gc.Node.make("fused", (a, b), expr=expr, dtype="float64")
    plain = gc.sigmoid(a * b) + gc.exp(b) / a
    av = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]])
    bv = np.array([0.3, -0.7, 1.1])
    grads = gc.grad(gc.sum(fused * fused), [a, b])
    expected = gc.grad(gc.sum(plain * plain), [a, b])
    got = run(program(grads + [fused], [a, b]), av, bv)
    want = run(program(expected + [plain], [a, b]), av, bv)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_fused_node_rejects_foreign_symbols():
    a = gc.input("a", (2,))
    try:
        gc.Node.make("fused", (a,), expr=sympy.Symbol("x1", real=True), dtype="float32")
    except ValueError as exc:
        assert "x1" in str(exc)
    else:
        raise AssertionError("a fused node accepted a symbol without an input")
