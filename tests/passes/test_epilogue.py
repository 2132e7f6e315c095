import numpy as np
import sympy

import graphc as gc
from graphc.ops.epilogue import ACC
from graphc.ops.scalar import input_symbols
from graphc.passes import optimize
from graphc.passes.epilogue import epilogue

from .helpers import program, run

RNG = np.random.default_rng(0)


def test_bias_and_relu_attach_to_the_matmul():
    x, w, b = gc.input("x", ("N", 5)), gc.input("w", (5, 3)), gc.input("b", (3,))
    before = program([gc.relu(x @ w + b)], [x, w, b])
    after = optimize(before)
    (out,) = after.outputs
    assert out.op == "fused_matmul" and out.inputs == (x, w, b)
    (x0,) = input_symbols(1)
    assert sympy.simplify(out.attrs["expr"] - gc.ops.scalar.Relu(ACC + x0)) == 0
    args = [RNG.normal(size=(4, 5)).astype(np.float32), RNG.normal(size=(5, 3)).astype(np.float32),
            RNG.normal(size=3).astype(np.float32)]
    binding = {x.shape[0]: 4}
    np.testing.assert_array_equal(run(before, *args, binding=binding)[0],
                                  run(after, *args, binding=binding)[0])


def test_relu_mask_of_the_backward_pass_attaches_to_its_matmul():
    x, w1, w2 = gc.input("x", (4, 5), "float64"), gc.param("w1", RNG.normal(size=(5, 6))), \
        gc.param("w2", RNG.normal(size=(6, 2)))
    pre = x @ w1
    loss = gc.sum(gc.relu(pre) @ w2)
    (g,) = gc.grad(loss, [w1])
    after = optimize(program([g], [x]))
    masked = [n for n in after.graph if n.op == "fused_matmul"]
    assert any(isinstance(n.attrs["expr"], sympy.Mul) and ACC in n.attrs["expr"].free_symbols
               and n.attrs["expr"].has(sympy.Piecewise) for n in masked)
    xs = RNG.normal(size=(4, 5))
    np.testing.assert_array_equal(run(program([g], [x]), xs)[0], run(after, xs)[0])


def test_a_matmul_used_twice_keeps_its_output():
    a, w = gc.input("a", (2, 3)), gc.input("w", (3, 3))
    m = a @ w
    after = epilogue(program([gc.exp(m), m * 2.0], [a, w]))
    assert [o.op for o in after.outputs] == ["exp", "mul"]


def test_conv2d_bias_and_relu_attach():
    x, k, b = gc.input("x", (2, 3, 6, 6)), gc.input("k", (4, 3, 3, 3)), gc.input("b", (4,))
    before = program([gc.relu(gc.conv2d(x, k, b, 1, 1))], [x, k, b])
    after = optimize(before)
    (out,) = after.outputs
    assert out.op == "fused_conv2d" and out.attrs["stride"] == (1, 1)
    args = [RNG.normal(size=s).astype(np.float32) for s in ((2, 3, 6, 6), (4, 3, 3, 3), (4,))]
    np.testing.assert_array_equal(run(before, *args)[0], run(after, *args)[0])


def test_epilogue_gradients_match_the_unfused_ones():
    x, w, b = gc.input("x", (3, 4), "float64"), gc.input("w", (4, 2), "float64"), \
        gc.input("b", (2,), "float64")
    plain = gc.tanh(x @ w + b) * b
    fused = optimize(program([plain], [x, w, b])).outputs[0]
    assert fused.op == "fused_matmul"
    got = gc.grad(gc.sum(fused * fused), [x, w, b])
    want = gc.grad(gc.sum(plain * plain), [x, w, b])
    args = [RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2)), RNG.normal(size=2)]
    for g, h in zip(run(program(got, [x, w, b]), *args), run(program(want, [x, w, b]), *args)):
        np.testing.assert_allclose(g, h, rtol=1e-12)
