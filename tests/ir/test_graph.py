"""Graphs: the order topological_order gives, and a program's graph built once."""

import graphc as gc
from graphc.ir import topological_order
from graphc.ir.program import Program


def _postorder(outputs):
    """The reference order: a recursive depth-first post-order, inputs left to right."""
    order, seen = [], set()

    def visit(node):
        if node in seen:
            return
        seen.add(node)
        for i in node.inputs:
            visit(i)
        order.append(node)

    for root in outputs:
        visit(root)
    return order


def test_topological_order_is_the_depth_first_post_order():
    x, y = gc.input("x", (3,)), gc.input("y", (3,))
    a = gc.exp(x) * y
    b = gc.where(a > y, a + x, gc.tanh(y) - a)
    c = b * b + gc.exp(x)
    outputs = [c, a, gc.sum(b, axis=0), x]
    assert topological_order(outputs) == _postorder(outputs)


def test_a_programs_graph_is_built_once():
    x = gc.input("x", (3,))
    program = Program((x,), (gc.exp(x) + 1.0,), ())
    assert program.graph is program.graph
    assert program.graph.nodes == topological_order(program.results)
