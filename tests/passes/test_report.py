import numpy as np
import pydot
import pytest

import graphc as gc
from graphc.passes.report import count_kernels, fusion_dot, is_kernel


def _step(optimize=True):
    x = gc.input("x", ("N", 3))
    w = gc.param("w", np.ones((3, 2), np.float32))
    b = gc.param("b", np.zeros(2, np.float32))
    loss = gc.mean(gc.softmax(gc.relu(x @ w + b)))
    (gw,) = gc.grad(loss, [w])
    return gc.compile([x], [loss], updates={w: w - 0.1 * gw}, backend="numpy",
                      optimize=optimize)


def test_kernels_exclude_leaves_and_views():
    x = gc.input("x", (2, 3))
    assert not is_kernel(x) and not is_kernel(gc.reshape(x, (3, 2)))
    assert not is_kernel(gc.stop_gradient(x)) and is_kernel(gc.exp(x))
    assert is_kernel(gc.broadcast_to(x, (4, 2, 3)))


def test_report_lists_every_pass_and_the_kernels_left():
    step = _step()
    lines = step.report().splitlines()
    names = [line.split()[0] for line in lines[1:-1]]
    assert names == ["constant_folding", "cse", "simplify", "reduce_fusion", "fusion",
                     "group_fusion", "epilogue"]
    stats = step.pass_stats
    assert all(a.nodes_after == b.nodes_before for a, b in zip(stats, stats[1:]))
    assert stats[-1].kernels_after == count_kernels(step.program)
    assert lines[-1].startswith(f"kernels left: {count_kernels(step.program)} (")
    assert "fused_matmul" in stats[-1].created


def test_report_without_optimization():
    step = _step(optimize=False)
    assert "no passes ran" in step.report()
    assert fusion_dot(step, "before") == fusion_dot(step, "after")


@pytest.mark.parametrize("stage", ["before", "after"])
def test_drawings_show_fused_kernels_as_clusters(stage):
    step = _step()
    (graph,) = pydot.graph_from_dot_data(fusion_dot(step, stage))
    clusters = graph.get_subgraphs()
    fused = [n for n in step.graph if n.op.startswith("fused")]
    assert len(clusters) == len(fused) > 0
    for cluster in clusters:
        members = [n for n in cluster.get_nodes() if n.get_name() not in ("node", "graph")]
        assert members
        labels = [n.get_label().strip('"').removeprefix("∇ ") for n in members]
        if stage == "after":
            assert len(members) == 1 and labels[0].startswith("fused")
        else:
            assert not any(label.startswith("fused") for label in labels)


def test_drawing_stage_is_checked():
    with pytest.raises(ValueError, match="stage"):
        fusion_dot(_step(), "during")
