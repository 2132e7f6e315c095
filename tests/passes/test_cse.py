import numpy as np

import graphc as gc
from graphc.passes.cse import cse

from .helpers import program, run


def test_commuted_operands_become_one_node():
    a, b = gc.input("a", (2,)), gc.input("b", (2,))
    before = program([a * b + gc.exp(b * a)], [a, b])
    after = cse(before)
    (out,) = after.outputs
    product = out.inputs[0] if out.inputs[0].op == "mul" else out.inputs[1]
    other = out.inputs[1] if product is out.inputs[0] else out.inputs[0]
    assert other.op == "exp" and other.inputs[0] is product
    xs = [np.array([1.0, -2.0], np.float32), np.array([0.5, 3.0], np.float32)]
    np.testing.assert_array_equal(run(before, *xs)[0], run(after, *xs)[0])


def test_structurally_equal_nodes_are_one_node():
    x = gc.input("x", (2,))
    assert gc.exp(x) + 1.0 is gc.exp(x) + 1.0


def test_identity_updates_are_dropped():
    w = gc.param("w", np.ones(2, np.float32))
    v = gc.param("v", np.ones(2, np.float32))
    after = cse(program([], updates=[(w, w), (v, v * 2.0)]))
    assert [p for p, _ in after.updates] == [v]
