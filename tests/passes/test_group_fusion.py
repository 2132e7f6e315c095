"""Multi-output fusion: result kernels merged with the same-shape kernels that read them
into one fused_group, bit for bit on the NumPy reference."""

import numpy as np
import pytest

import graphc as gc
from graphc.errors import GraphError
from graphc.ir.node import Node
from graphc.ir.program import Program
from graphc.ops.fused_group import output_symbols
from graphc.ops.scalar import input_symbols
from graphc.passes import PIPELINE, optimize
from graphc.passes.fusion import fusion
from graphc.passes.group_fusion import group_fusion
from graphc.passes.report import count_kernels, fusion_dot
from graphc.viz import node_label

from . import models
from .helpers import ops, program, run

G = np.array([[0.5, -2.0, 3.0], [np.nan, 1e-30, -7.0]], np.float32)


def _momentum():
    """One momentum step of a (2, 3) param: v' = 0.9 v + g, p' = p - 0.05 v'."""
    p = gc.param("p", np.ones((2, 3), np.float32))
    v = gc.param("v", np.full((2, 3), 0.25, np.float32))
    g = gc.input("g", (2, 3))
    new_v = 0.9 * v + g
    return program([], [g], [(v, new_v), (p, p - 0.05 * new_v)])


def test_a_state_and_its_param_become_one_group_bit_for_bit():
    before = fusion(_momentum())
    assert ops(before).count("fused") == 2
    after = group_fusion(before)
    (new_v, new_p) = (value for _, value in after.updates)
    assert (new_v.op, new_v.attrs, new_p.op, new_p.attrs) == (
        "group_output", {"index": 0}, "group_output", {"index": 1})
    group = new_v.inputs[0]
    assert new_p.inputs[0] is group and group.op == "fused_group"
    assert group.attrs["dtypes"] == ("float32", "float32") and group.shape == (2, 3)
    v_expr, p_expr = group.attrs["exprs"]
    (y0,) = output_symbols(1)
    assert y0 not in v_expr.free_symbols and y0 in p_expr.free_symbols  # v' as computed
    assert set(group.inputs) == {p for p, _ in before.updates} | set(before.inputs)
    assert count_kernels(after) == 1  # projections are not kernels
    for x, y in zip(run(before, G), run(after, G)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_training_steps_are_bit_exact_with_and_without_the_pass(optimizer):
    inputs, loss, updates, arrays = models.mlp(getattr(models, optimizer))
    source = Program(tuple(inputs), (loss,), tuple(updates.items()))
    grouped = optimize(source)
    plain = source
    for run_pass in PIPELINE:
        plain = plain if run_pass is group_fusion else run_pass(plain)
    assert "fused_group" in ops(grouped) and "fused_group" not in ops(plain)
    binding = {d: 16 for d in inputs[0].shape if not isinstance(d, int)}
    for x, y in zip(run(plain, *arrays, binding=binding), run(grouped, *arrays, binding=binding)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def test_a_path_through_another_kernel_keeps_the_kernels_apart():
    x = gc.input("x", (2, 3))
    a = gc.exp(x) * 2.0                 # an output, read by b directly and through a sum
    b = a * gc.sum(a, axis=0) + 1.0     # merging a into b would need the sum inside
    after = group_fusion(fusion(program([a, b], [x])))
    assert "fused_group" not in ops(after)


def test_a_consumer_of_another_shape_is_not_merged():
    x, y = gc.input("x", (3,)), gc.input("y", (4, 3))
    a = gc.exp(x) * 2.0
    b = (a + y) * 3.0                   # shape (4, 3): a is computed once, not per row
    after = group_fusion(fusion(program([a, b], [x, y])))
    assert "fused_group" not in ops(after)


def test_chains_of_results_are_one_group_in_order():
    x = gc.input("x", (2, 3))
    a = gc.exp(x) + 1.0
    b = a * a - x
    c = gc.tanh(b) * a
    before = fusion(program([a, b, c], [x]))
    after = group_fusion(before)
    assert [o.attrs["index"] for o in after.outputs] == [0, 1, 2]
    assert len({o.inputs[0] for o in after.outputs}) == 1
    for p, q in zip(run(before, G), run(after, G)):
        np.testing.assert_array_equal(p, q)


def test_drawings_box_a_group_with_its_outputs_and_label_each_expression():
    p = gc.param("p", np.ones((2, 3), np.float32))
    v = gc.param("v", np.zeros((2, 3), np.float32))
    g = gc.input("g", (2, 3))
    new_v = 0.9 * v + g
    step = gc.compile([g], [], updates={v: new_v, p: p - 0.05 * new_v}, backend="numpy")
    group = next(n for n in step.program.graph.nodes if n.op == "fused_group")
    label = node_label(group)
    assert label.splitlines()[1].startswith("y0 = ") and "y1 = " in label
    assert "float32" in label and "(2, 3)" in label
    dot = fusion_dot(step)
    cluster = dot[dot.index("fused_group #0"):]
    cluster = cluster[:cluster.index("}")]
    assert cluster.count("group_output") == 2
    assert "fused_group" in step.report()


def test_bad_groups_are_refused_and_groups_have_no_gradient():
    x = gc.input("x", (2, 3))
    (x0,), (y0,) = input_symbols(1), output_symbols(1)
    with pytest.raises(GraphError, match="y0"):
        Node.make("fused_group", (x,), exprs=(y0,), dtypes=("float32",), shape=(2, 3))
    group = Node.make("fused_group", (x,), exprs=(x0, y0 * x0), dtypes=("float32", "float64"),
                      shape=(2, 3))
    with pytest.raises(GraphError, match="index"):
        Node.make("group_output", (group,), index=2)
    second = Node.make("group_output", (group,), index=1)
    assert second.dtype == np.float64 and second.shape == (2, 3)
    with pytest.raises(NotImplementedError, match="group_output"):
        gc.grad(gc.sum(second), [x])
