"""relu's gradient mask `z > 0` reads relu(z) where the graph computes it (simplify), so z
keeps relu as its one reader and epilogue fusion folds relu into the conv/matmul: exact on
every value, and no relu is added where the graph has none."""

import numpy as np
import pytest

import graphc as gc
from graphc.ir.graph import Graph
from graphc.passes.simplify import simplify

from .helpers import program, run

SPECIAL = np.array([np.nan, -np.inf, -2.0, -0.0, 0.0, 1e-45, 3.0, np.inf], np.float32)


def _comparisons(prog):
    return [n for n in Graph(prog.results).nodes if n.op in ("greater", "less")]


@pytest.mark.parametrize("build", [lambda z: gc.greater(z, 0.0), lambda z: gc.less(0.0, z),
                                   lambda z: gc.greater(z, -0.0)])
def test_positive_test_reads_relu_and_is_exact(build):
    x = gc.input("x", SPECIAL.shape)
    z = x * 1.5
    before = program([gc.relu(z), build(z)], [x])
    after = simplify(before)
    (compare,) = _comparisons(after)
    assert gc.relu(z) in compare.inputs and z not in compare.inputs
    for got, expected in zip(run(after, SPECIAL), run(before, SPECIAL), strict=True):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_no_relu_is_added_where_the_graph_has_none():
    x = gc.input("x", (4,))
    after = simplify(program([gc.greater(x * 2.0, 0.0)], [x]))
    assert "relu" not in [n.op for n in Graph(after.results).nodes]
    (compare,) = _comparisons(after)
    assert compare.inputs[0].op == "mul"


def test_other_thresholds_are_kept():
    x = gc.input("x", (4,))
    z = x * 2.0
    after = simplify(program([gc.relu(z), gc.greater(z, 1.0), gc.greater(z, z)], [x]))
    assert all(gc.relu(z) not in c.inputs for c in _comparisons(after))


@pytest.mark.parametrize("layer", ["conv", "linear"])
def test_relu_folds_into_the_producer_of_a_trained_layer(layer):
    """One relu kernel fewer: fused_conv2d / fused_matmul applies relu, and the backward
    mask reads its output. Optimized and unoptimized steps agree exactly."""
    rng = np.random.default_rng(0)
    if layer == "conv":
        x = gc.input("x", (2, 3, 6, 6))
        w = gc.param("w", rng.normal(size=(4, 3, 3, 3)).astype(np.float32))
        out = gc.max_pool2d(gc.relu(gc.conv2d(x, w, padding=1)), 2)
    else:
        x = gc.input("x", (5, 7))
        w = gc.param("w", rng.normal(size=(7, 4)).astype(np.float32))
        out = gc.relu(x @ w) @ gc.constant(rng.normal(size=(4, 3)).astype(np.float32))
    loss = gc.sum(out * out)
    (gw,) = gc.grad(loss, [w])
    data = rng.normal(size=x.shape).astype(np.float32)
    data.flat[:3] = [np.nan, 0.0, -0.0]
    step = gc.compile([x], [loss, gw], backend="numpy")
    plain = gc.compile([x], [loss, gw], backend="numpy", optimize=False)
    ops = [n.op for n in Graph(step.program.results).nodes]
    assert "relu" not in ops
    (producer,) = [n for n in Graph(step.program.results).nodes
                   if n.op in ("fused_conv2d", "fused_matmul") and "Relu" in str(n.attrs["expr"])]
    assert producer.inputs[:2] == (x, w)
    for got, expected in zip(step(data), plain(data), strict=True):
        np.testing.assert_array_equal(got, expected)
