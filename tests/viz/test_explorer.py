"""The explorer's data: every node of every stage, edges, groups, provenance, times."""

import numpy as np
import pytest

import graphc as gc
from graphc.ir.graph import Graph
from graphc.ir.op import is_kernel
from graphc.viz.explorer import Stage, gradient_groups, kernel_times, stage_data
from tests.viz.common import lenet_step


def test_a_training_step_has_four_stages_with_every_node():
    step, _ = lenet_step()
    stages = {s.name: s for s in step.stages()}
    assert list(stages) == ["forward", "backward", "optimized", "fused"]
    source, final = step.source, step.program
    expected = {"forward": Graph(list(source.outputs)), "backward": Graph(source.results),
                "optimized": Graph(final.results)}
    for name, graph in expected.items():
        data = stage_data(stages[name])
        assert len(data["nodes"]) == len(graph.nodes)
        assert [n["op"] for n in data["nodes"]] == [n.op for n in graph.nodes]
        assert len(data["edges"]) == sum(len(n.inputs) for n in graph.nodes)


def test_the_backward_stage_groups_what_grad_built_and_names_the_forward_op():
    step, _ = lenet_step()
    backward = next(s for s in step.stages() if s.name == "backward")
    data = stage_data(backward)
    (group,) = data["groups"]
    assert group["kind"] == "gradient" and group["title"].startswith("∇ gradient")
    grads = [k for k, n in enumerate(data["nodes"]) if n.get("grad") and n["kind"] not in
             ("input", "param", "constant")]
    assert sorted(group["nodes"]) == grads
    conv_grads = [n for n in data["nodes"] if n["op"] == "conv2d_grad_weight"]
    assert conv_grads and all(n["of"].startswith("conv2d built at ") for n in conv_grads)
    assert all(n["origin"].endswith(tuple("0123456789")) for n in data["nodes"])


def test_the_fused_stage_groups_each_kernels_ops():
    step, _ = lenet_step()
    fused = stage_data(next(s for s in step.stages() if s.name == "fused"))
    assert fused["groups"] and all(g["kind"] == "kernel" for g in fused["groups"])
    members = [i for g in fused["groups"] for i in g["nodes"]]
    assert len(members) == len(set(members))  # a node is in one group at most
    assert any(g["title"].startswith("fused_conv2d #") for g in fused["groups"])


def test_kernel_times_map_every_profiled_kernel_to_its_node():
    step, arrays = lenet_step()
    profile = step.profile(*arrays, calls=1)
    graph = step.program.graph
    times = kernel_times(graph, profile)
    assert len(times) == len(profile.kernels) == len([n for n in graph.nodes if is_kernel(n)])
    assert sum(times.values()) == pytest.approx(profile.seconds)
    optimized = stage_data(Stage("optimized", step.program.outputs, step.program.updates), times)
    assert sum(n.get("ms", 0) for n in optimized["nodes"]) == \
        pytest.approx(profile.seconds * 1e3)
    assert sum(1 for n in optimized["nodes"] if "ms" in n) == len(times)


def test_graph_values_have_one_stage_with_their_gradient_grouped():
    x = gc.input("x", (3,))
    w = gc.param("w", np.ones(3, np.float32))
    loss = gc.sum(gc.tanh(x * w))
    (g,) = gc.grad(loss, [w])
    groups = gradient_groups([loss, g], ())
    data = stage_data(Stage("graph", (loss, g), (), groups, "gradient"))
    assert len(data["groups"]) == 1 and data["nodes"][-1]["grad"]
    assert not gradient_groups([loss], ())
