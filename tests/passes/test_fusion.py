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


def test_fused_casts_from_bool_compute_as_numbers_on_the_reference():
    """A cast from bool fuses as its bool operand; the NumPy evaluator must add, negate and
    multiply it as 0/1 in the kernel's dtype (NumPy adds bools as a logical or, refuses to
    negate them), as the unfused ops and the LLVM backend do (-0.0 for -cast(False))."""
    from graphc.passes import optimize

    a, b = gc.input("a", (4,), "bool"), gc.input("b", (4,), "bool")
    x, i = gc.input("x", (4,)), gc.input("i", (4,), "int64")
    f32 = lambda v: gc.cast(v, "float32")  # noqa: E731
    outs = [f32(a) + f32(b), -f32(a), x - f32(b), gc.mean((x - f32(a)) ** 2),
            i + gc.cast(a, "int64"), gc.sum(gc.cast(a, "int32") + gc.cast(b, "int32")),
            gc.greater(f32(a) + f32(b), 1.5)]
    before = program(outs, [a, b, x, i])
    after = optimize(before)
    from graphc.ir.graph import Graph

    kernels = [n for n in Graph(after.results).nodes if n.op.startswith("fused")]
    assert sum(any(i.dtype == np.bool_ for i in n.inputs) for n in kernels) >= 3
    args = (np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool),
            np.array([0.5, -1, 2, 3], np.float32), np.array([2**60 + 1, 3, 4, 5], np.int64))
    for want, got in zip(run(before, *args), run(after, *args)):
        assert got.dtype == want.dtype
        assert got.tobytes() == want.tobytes(), (want, got)
