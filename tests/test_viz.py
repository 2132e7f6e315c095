"""gc.to_dot and gc.viz.write: the DOT text is parsed back with pydot and checked node by
node and edge by edge; image writing runs a fake `dot` placed on PATH (no Graphviz needed)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pydot
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.viz import EXPR_WIDTH, GraphvizNotFoundError, GraphvizTimeoutError, to_dot, write

# pydot's parser calls pyparsing names that pyparsing 3.3 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:'[a-zA-Z]+' deprecated - use")

# ----- helpers: DOT back to Python ----------------------------------------------------------


def unquote(text: str | None) -> str | None:
    """A pydot attribute value as the text Graphviz shows (undo DOT quoting)."""
    if text is None or not (text.startswith('"') and text.endswith('"')):
        return text
    out, chars = [], iter(text[1:-1])
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars)
        out.append({"n": "\n", '"': '"', "\\": "\\"}.get(escaped, "\\" + escaped))
    return "".join(out)


class Drawing:
    """A parsed DOT graph: nodes by id (attributes unquoted), edges, clusters."""

    def __init__(self, text: str):
        (graph,) = pydot.graph_from_dot_data(text)
        self.graph = graph
        self.nodes: dict[str, dict[str, str]] = {}
        self.clusters: dict[str, tuple[str, set[str]]] = {}
        self._collect(graph)
        for sub in graph.get_subgraphs():
            members = self._collect(sub)
            self.clusters[sub.get_name()] = (unquote(sub.get_label()), members)
        self.edges = [(e.get_source(), e.get_destination(), unquote(e.get("label")))
                      for e in graph.get_edges()]

    def _collect(self, graph) -> set[str]:
        names = set()
        for node in graph.get_nodes():
            if node.get_name() in ("node", "edge", "graph"):
                continue
            self.nodes[node.get_name()] = {k: unquote(v) for k, v in
                                           node.get_attributes().items()}
            names.add(node.get_name())
        return names

    def label(self, node_id: str) -> str:
        return self.nodes[node_id]["label"]

    def by_label(self, label: str) -> dict[str, str]:
        (found,) = [a for a in self.nodes.values() if a["label"] == label]
        return found

    def labelled_edges(self) -> set[tuple[str, str, str | None]]:
        return {(self.label(s), self.label(d), slot) for s, d, slot in self.edges}


def fused_node(inputs: tuple[Node, ...], expr, shape=(4,), dtype="float32") -> Node:
    """A node of op "fused" built without the op registry (the fusion pass, which owns the
    op, may not exist yet); it has every field a drawing reads."""
    node = object.__new__(Node)
    fields = {"op": "fused", "inputs": tuple(inputs), "attrs": {"expr": expr},
              "dtype": np.dtype(dtype), "shape": shape, "origin": None, "serial": -1,
              "tag": None, "_value": None}
    for name, value in fields.items():
        object.__setattr__(node, name, value)  # nodes are immutable once built
    return node


# ----- nodes, edges, styles -----------------------------------------------------------------

def test_nodes_show_op_name_shape_and_dtype():
    x = gc.input("vx", ("N", 3), dtype="float64")
    W = gc.param("VW", np.ones((3, 2)))
    b = gc.param("vb", np.zeros(2))
    y = gc.tanh(x @ W + b)
    drawing = Drawing(to_dot(y))
    labels = sorted(drawing.label(n) for n in drawing.nodes)
    assert labels == sorted(["input vx\n(N, 3) float64", "param VW\n(3, 2) float64",
                             "param vb\n(2,) float64", "matmul\n(N, 2) float64",
                             "add\n(N, 2) float64", "tanh\n(N, 2) float64"])


def test_edges_follow_the_inputs_and_name_the_slot_of_multi_input_ops():
    x = gc.input("ex", ("N", 3), dtype="float64")
    W = gc.param("eW", np.ones((3, 2)))
    b = gc.param("eb", np.zeros(2))
    y = gc.tanh(x @ W + b)
    drawing = Drawing(to_dot(y))
    assert drawing.labelled_edges() == {
        ("input ex\n(N, 3) float64", "matmul\n(N, 2) float64", "0"),
        ("param eW\n(3, 2) float64", "matmul\n(N, 2) float64", "1"),
        ("matmul\n(N, 2) float64", "add\n(N, 2) float64", "0"),
        ("param eb\n(2,) float64", "add\n(N, 2) float64", "1"),
        ("add\n(N, 2) float64", "tanh\n(N, 2) float64", None),
    }
    assert len(drawing.edges) == sum(len(n.inputs) for n in Graph([y]).nodes)


def test_a_value_used_twice_by_one_op_gets_an_edge_per_slot():
    x = gc.input("sq", (3,))
    drawing = Drawing(to_dot(x * x))
    assert sorted(drawing.edges, key=lambda e: e[2]) == [("n0", "n1", "0"), ("n0", "n1", "1")]


def test_inputs_params_constants_and_ops_are_drawn_distinctly():
    x = gc.input("lx", (3,))
    p = gc.param("lp", np.ones(3, np.float32))
    c = gc.constant(np.arange(3, dtype=np.float32))
    drawing = Drawing(to_dot(x * p + c))

    def look(label):
        attrs = drawing.by_label(label)
        return attrs.get("shape"), attrs.get("style"), attrs.get("fillcolor")

    styles = [look("input lx\n(3,) float32"), look("param lp\n(3,) float32"),
              look("constant\n(3,) float32"), look("mul\n(3,) float32")]
    assert len(set(styles)) == 4


def test_a_one_element_constant_shows_its_value():
    x = gc.input("cx", (3,))
    drawing = Drawing(to_dot(x * 2.5))
    assert {drawing.label(n).split("\n")[0] for n in drawing.nodes} == {
        "input cx", "const 2.5", "mul"}


@pytest.mark.parametrize("value, shown", [(0.9, "0.9"), (0.1, "0.1"), (3.0, "3.0"),
                                          (1e-8, "1e-08"), (-2.5e20, "-2.5e+20")])
def test_a_float32_constant_shows_its_shortest_round_trip_form(value, shown):
    """0.9 as a float32 is 0.899999976158142 in float64: the label shows 0.9, which reads
    back as the same float32."""
    x = gc.input("cx", (3,))
    drawing = Drawing(to_dot(x * value))
    assert f"const {shown}" in {drawing.label(n).split("\n")[0] for n in drawing.nodes}
    assert np.float32(shown) == np.float32(value)


def test_only_the_drawn_values_are_marked_as_outputs():
    x = gc.input("ox", (3,))
    hidden = gc.exp(x)
    first, second = gc.sum(hidden), gc.max(hidden)
    drawing = Drawing(to_dot([first, second]))
    marked = {drawing.label(n) for n, a in drawing.nodes.items() if a.get("peripheries") == "2"}
    assert marked == {"sum\n() float32", "max\n() float32"}


def test_gradient_nodes_have_a_grad_mark_and_style():
    x = gc.input("gx", ("N", 3))
    W = gc.param("gW", np.ones((3, 2), np.float32))
    loss = gc.sum(gc.tanh(x @ W))
    (gW,) = gc.grad(loss, [W])
    graph = Graph([loss, gW])
    drawing = Drawing(to_dot([loss, gW]))
    ids = {node: f"n{k}" for k, node in enumerate(graph.nodes)}  # to_dot numbers in this order
    grad_nodes = [n for n in graph.nodes if n.tag == "grad"]
    assert grad_nodes and all(n.tag is None for n in Graph([loss]).nodes)
    for node in graph.nodes:
        attrs = drawing.nodes[ids[node]]
        head = attrs["label"].split("\n")[0].removeprefix("∇ ")
        assert head.startswith("const " if node.op == "constant" else node.op)
        if node.tag == "grad":
            assert attrs["label"].startswith("∇ ")
            assert attrs["fontcolor"] == "#4a148c"
        else:
            assert not attrs["label"].startswith("∇")
            assert "fontcolor" not in attrs
    ops = [n for n in grad_nodes if n.op != "constant"]
    assert all(drawing.nodes[ids[n]]["fillcolor"] == "#f3e5f5" for n in ops)
    assert drawing.label(ids[gW]) == "∇ matmul\n(3, 2) float32"


def test_update_values_are_labelled_with_their_param():
    x = gc.input("ux", (2,))
    W = gc.param("uW", np.ones(2, np.float32))
    loss = gc.sum(x * W)
    (gW,) = gc.grad(loss, [W])
    new = W - 0.5 * gW
    drawing = Drawing(to_dot([loss], updates={W: new}))
    assert drawing.label(f"n{Graph([loss, new]).nodes.index(new)}") == \
        "sub\n(2,) float32\n→ uW"
    marked = [a["label"] for a in drawing.nodes.values() if a.get("peripheries") == "2"]
    assert marked == ["sum\n() float32"]


def test_compiled_to_dot_draws_the_program_that_runs():
    x = gc.input("px", ("N", 2))
    W = gc.param("pW", np.ones((2, 2), np.float32))
    loss = gc.mean(x @ W)
    (gW,) = gc.grad(loss, [W])
    step = gc.compile([x], [loss], updates={W: W - 0.1 * gW}, backend="numpy")
    drawing = Drawing(step.to_dot())
    graph = step.program.graph
    assert len(drawing.nodes) == len(graph)
    assert len(drawing.edges) == sum(len(n.inputs) for n in graph.nodes)
    assert {"input px\n(N, 2) float32", "param pW\n(2, 2) float32"} <= {
        a["label"] for a in drawing.nodes.values()}


# ----- escaping -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ['say "hi"', "back\\slash", "trail\\", "two\nlines",
                                  "a -> b; } digraph {", "<html> & {record|x}", "∇ü\t1",
                                  "\\n is not a newline", "x\\\"y"])
def test_any_param_name_gives_valid_dot_showing_the_name(name):
    p = gc.param(name, np.ones(2, np.float32))
    drawing = Drawing(to_dot(gc.exp(p), name=name))
    shown = name.replace("\t", "\\x09")  # control characters are shown as \xNN
    assert drawing.label("n0") == f"param {shown}\n(2,) float32"
    assert drawing.label("n1") == "exp\n(2,) float32"
    assert unquote(drawing.graph.get_name()) == name.replace("\t", "\\x09")


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=20))
def test_every_name_round_trips_through_dot(name):
    p = gc.param(name, np.ones(1, np.float32))
    drawing = Drawing(to_dot(p))
    shown = "".join(c if c == "\n" or (ord(c) >= 32 and ord(c) != 127) else f"\\x{ord(c):02x}"
                    for c in name)
    assert drawing.label("n0") == f"param {shown}\n(1,) float32"


def test_to_dot_rejects_what_is_not_a_graph_value():
    with pytest.raises(TypeError, match="expected graph values, got ndarray"):
        to_dot([np.ones(3)])


# ----- clusters and fused nodes -------------------------------------------------------------

def test_clusters_are_drawn_as_subgraph_boxes_holding_their_nodes():
    x = gc.input("kx", (4,))
    a = gc.exp(x)
    b = gc.tanh(a)
    c = gc.sum(b)
    drawing = Drawing(to_dot(c, clusters={"fused 0": [a, b], 'odd "name"': [c]}))
    ids = {node: f"n{k}" for k, node in enumerate(Graph([c]).nodes)}
    assert drawing.clusters == {"cluster_0": ("fused 0", {ids[a], ids[b]}),
                                "cluster_1": ('odd "name"', {ids[c]})}
    assert drawing.label(ids[x]) == "input kx\n(4,) float32"  # unclustered nodes are drawn
    assert drawing.labelled_edges() == {
        ("input kx\n(4,) float32", "exp\n(4,) float32", None),
        ("exp\n(4,) float32", "tanh\n(4,) float32", None),
        ("tanh\n(4,) float32", "sum\n() float32", None)}


def test_bad_clusters_are_refused_with_a_clear_message():
    x = gc.input("bx", (4,))
    y = gc.exp(x)
    stranger = gc.log(x)
    with pytest.raises(ValueError, match="cluster 'f' holds <log .*not in the graph"):
        to_dot(y, clusters={"f": [stranger]})
    with pytest.raises(ValueError, match="clusters 'f' and 'g'; clusters must not overlap"):
        to_dot(y, clusters={"f": [y], "g": [x, y]})
    with pytest.raises(TypeError, match="cluster 'f' holds 3, not a graph value"):
        to_dot(y, clusters={"f": [3]})


def test_a_fused_node_shows_its_expression_shortened():
    x = gc.input("fx", (4,))
    s0, s1 = sympy.symbols("x0 x1")
    short = fused_node((x,), sympy.tanh(s0) * 2)
    long_expr = sum(sympy.exp(s0 * k) * sympy.sin(s1 + k) for k in range(1, 8))
    long = fused_node((x, short), long_expr, dtype="float64")
    drawing = Drawing(to_dot(long, clusters={"fused": [short, long]}))
    assert drawing.label("n1") == f"fused\n{sympy.tanh(s0) * 2}\n(4,) float32"
    head, expr, tail = drawing.label("n2").split("\n")
    assert (head, tail) == ("fused", "(4,) float64")
    assert len(expr) == EXPR_WIDTH and expr.endswith("…")
    assert str(long_expr).startswith(expr[:-1])
    assert drawing.clusters["cluster_0"] == ("fused", {"n1", "n2"})


# ----- writing files ---------------------------------------------------------------------------

def fake_dot(directory, body: str) -> None:
    """Put an executable `dot` on PATH that runs the Python `body` (argv and stdin given)."""
    directory.mkdir(exist_ok=True)
    path = directory / "dot"
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


RECORDING_DOT = """
args = sys.argv[1:]
dot_text = sys.stdin.read()
with open(args[args.index("-o") + 1], "w", encoding="utf-8") as out:
    out.write("FAKE-DOT " + args[0] + "\\n" + dot_text)
"""


def test_write_dot_text_from_values_text_or_a_compiled_function(tmp_path):
    x = gc.input("wx", (3,))
    y = gc.exp(x)
    assert write(y, tmp_path / "a.dot").read_text(encoding="utf-8") == to_dot(y)
    assert write([y], tmp_path / "b.gv", name="g").read_text(encoding="utf-8") == \
        to_dot(y, name="g")
    assert write("digraph {}", tmp_path / "c.dot").read_text(encoding="utf-8") == "digraph {}"
    compiled = gc.compile([x], y, backend="numpy")
    assert write(compiled, tmp_path / "d.dot").read_text(encoding="utf-8") == compiled.to_dot()


def test_write_refuses_an_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"'a\.txt'.*\.dot, \.gv, \.svg, \.png, \.pdf"):
        write("digraph {}", tmp_path / "a.txt")


def test_svg_without_graphviz_says_to_install_it_or_write_dot(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GraphvizNotFoundError, match=r"a\.svg needs Graphviz's `dot`.*"
                                                   r"install Graphviz.*write a \.dot file"):
        write("digraph {}", tmp_path / "a.svg")
    assert not (tmp_path / "a.svg").exists()


@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_images_are_drawn_by_the_dot_on_path(tmp_path, monkeypatch, suffix):
    fake_dot(tmp_path / "bin", RECORDING_DOT)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    x = gc.input("ix", (3,))
    target = write(gc.exp(x), tmp_path / f"g.{suffix}")
    assert target == tmp_path / f"g.{suffix}"
    assert target.read_text(encoding="utf-8") == f"FAKE-DOT -T{suffix}\n" + to_dot(gc.exp(x))


def test_a_failing_dot_is_reported_with_its_message(tmp_path, monkeypatch):
    fake_dot(tmp_path / "bin", "sys.stderr.write('syntax error in line 1'); sys.exit(3)")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(RuntimeError, match=r"dot failed drawing a\.svg \(exit status 3\): "
                                           "syntax error in line 1"):
        write("digraph {}", tmp_path / "a.svg")


def test_a_hanging_dot_is_stopped_by_the_timeout(tmp_path, monkeypatch):
    fake_dot(tmp_path / "bin", "import time; time.sleep(30)")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(GraphvizTimeoutError, match=r"more than 0\.5 s to draw a\.svg"):
        write("digraph {}", tmp_path / "a.svg", timeout=0.5)
