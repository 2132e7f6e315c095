"""Epilogue fusion through a fused_group: the one member reading a matmul/conv output
becomes that producer's epilogue, the other members read its stored value, and the
program computes exactly what it did unoptimized."""

import numpy as np

import graphc as gc
from graphc.ir.graph import Graph
from graphc.passes import optimize

from .helpers import program, run

RNG = np.random.default_rng(0)


def _ops(prog):
    return [n.op for n in Graph(prog.results).nodes]


def _check_exact(before, after, *args):
    for got, expected in zip(run(after, *args), run(before, *args), strict=True):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_conv_relu_result_and_its_mask_split_into_epilogue_and_kernel():
    x, k, b = gc.input("x", (2, 3, 6, 6)), gc.input("k", (4, 3, 3, 3)), gc.input("b", (4,))
    y = gc.relu(gc.conv2d(x, k, b, 1, 1))
    g = gc.input("g", y.shape)
    (dk,) = gc.grad(gc.sum(y * g), [k])
    before = program([y, dk], [x, k, b, g])
    after = optimize(before)
    ops = _ops(after)
    assert "fused_group" not in ops and "relu" not in ops and "conv2d" not in ops
    assert after.outputs[0].op == "fused_conv2d"
    (mask,) = [n for n in Graph(after.results).nodes if n.op == "fused"]
    assert after.outputs[0] in mask.inputs
    args = [RNG.normal(size=s).astype(np.float32)
            for s in ((2, 3, 6, 6), (4, 3, 3, 3), (4,), (2, 4, 6, 6))]
    args[0].flat[:2] = [np.nan, -0.0]
    _check_exact(before, after, *args)


def test_the_other_members_stay_one_group():
    a, w, c = gc.input("a", (5, 4)), gc.input("w", (4, 6)), gc.input("c", (5, 6))
    y = gc.exp(a @ w)
    u = y * c
    v = u + y
    before = program([y, u, v], [a, w, c])
    after = optimize(before)
    assert after.outputs[0].op == "fused_matmul"
    assert [o.op for o in after.outputs[1:]] == ["group_output", "group_output"]
    (group,) = {o.inputs[0] for o in after.outputs[1:]}
    assert after.outputs[0] in group.inputs and len(group.attrs["exprs"]) == 2
    args = [RNG.normal(size=s).astype(np.float32) for s in ((5, 4), (4, 6), (5, 6))]
    _check_exact(before, after, *args)


def test_no_epilogue_when_two_members_read_the_producer():
    a, w, c = gc.input("a", (5, 4)), gc.input("w", (4, 6)), gc.input("c", (5, 6))
    m = a @ w
    y = gc.exp(m)
    before = program([y, y * c + m], [a, w, c])
    after = optimize(before)
    assert "matmul" in _ops(after) and "fused_matmul" not in _ops(after)
    args = [RNG.normal(size=s).astype(np.float32) for s in ((5, 4), (4, 6), (5, 6))]
    _check_exact(before, after, *args)


def test_a_consumer_of_another_dtype_stays_a_kernel_of_its_own():
    """`x @ w > 0` is bool: it is not stored in place of the float product (the LLVM
    backend computed it as one and failed)."""
    x, w = gc.input("x", (4, 5)), gc.input("w", (5, 3))
    k = gc.input("k", (2, 5, 3, 3))
    image = gc.input("image", (1, 5, 6, 6))
    outputs = [gc.greater(x @ w, 0.0), gc.less(gc.conv2d(image, k), 0.5)]
    before = program(outputs, [x, w, image, k])
    after = optimize(before)
    assert not {"fused_matmul", "fused_conv2d"} & set(_ops(after))
    args = [RNG.normal(size=s).astype(np.float32)
            for s in ((4, 5), (5, 3), (1, 5, 6, 6), (2, 5, 3, 3))]
    _check_exact(before, after, *args)
    compiled = gc.compile([x, w, image, k], outputs)
    for got, expected in zip(compiled(*args), run(before, *args), strict=True):
        np.testing.assert_array_equal(got, expected)
