"""The IR: hash-consing, immutability, symbolic shapes, graphs and their networkx view."""

import subprocess
import sys

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.ir import Graph, topological_order
from graphc.shapes import symbol


def test_structurally_equal_nodes_are_one_node():
    x = gc.input("x", (3,))
    assert (x + 1.0) is (x + 1.0)
    assert gc.exp(x) * 2.0 is gc.exp(x) * 2.0
    assert gc.sum(x, axis=0) is gc.sum(x, 0)


def test_constants_are_equal_by_value_and_dtype():
    assert gc.constant(np.arange(3.0)) is gc.constant(np.arange(3.0))
    assert gc.constant(np.arange(3.0)) is not gc.constant(np.arange(3.0, dtype=np.float32))
    assert gc.constant(np.arange(3.0)) is not gc.constant(np.arange(1.0, 4.0))


def test_params_are_distinct_even_with_equal_values():
    a = gc.param("w", np.zeros(2))
    b = gc.param("w", np.zeros(2))
    assert a is not b


def test_param_owns_a_copy_of_its_value():
    value = np.ones(3, np.float32)
    p = gc.param("p", value)
    value[:] = 5
    np.testing.assert_array_equal(p.value, np.ones(3))
    p.value[0] = 7  # writable in place
    assert p.value[0] == 7


def test_param_value_assignment_checks_shape_and_dtype():
    p = gc.param("p", np.zeros((2, 3), np.float32))
    kept = p.value
    p.value = np.ones((2, 3))
    assert p.value is kept and p.value.dtype == np.float32 and p.value.sum() == 6
    with pytest.raises(ValueError,
                       match=r"param 'p': new value has shape \(3, 2\), expected \(2, 3\)"):
        p.value = np.ones((3, 2))
    with pytest.raises(TypeError, match="param 'p': new value has dtype complex128"):
        p.value = np.ones((2, 3), complex)


def test_nodes_have_no_truth_value_and_eq_is_identity():
    x = gc.input("x", (2,))
    with pytest.raises(TypeError, match="no truth value"):
        bool(x > 0.0)
    assert (x == x) is True and (x == gc.input("y", (2,))) is False
    assert {x: 1}[x] == 1


def test_attributes_cannot_change():
    x = gc.input("x", (2,))
    y = gc.exp(x)
    with pytest.raises(AttributeError):
        y.foo = 1
    with pytest.raises(AttributeError, match="immutable"):
        y.op = "log"
    with pytest.raises(AttributeError, match="immutable"):
        y.shape = (3,)


def test_symbolic_shapes_propagate():
    x = gc.input("x", ("N", 4))
    n = symbol("N")
    assert x.shape == (n, 4)
    assert gc.concat([x, x], axis=0).shape == (2 * n, 4)
    assert x.reshape(-1).shape == (4 * n,)
    assert x.reshape(x.shape[0], 2, -1).shape == (n, 2, 2)
    assert (x[::-1] * 1.0).shape == (n, 4)
    assert isinstance(x.sum().shape, tuple) and x.sum().shape == ()
    assert gc.input("y", ("N",)).shape[0] == n


def test_symbolic_dim_that_cannot_be_inferred_is_refused():
    x = gc.input("x", ("N",))
    with pytest.raises(gc.GraphError, match=r"reshape: cannot reshape \(N,\) into \(3, -1\)"):
        x.reshape(3, -1)
    with pytest.raises(gc.GraphError, match="only ':' and '::-1' can slice it"):
        x[1:]


def test_topological_order_puts_inputs_first_and_shares_nodes():
    x = gc.input("x", (2,))
    a = gc.exp(x)
    b = a * a + a
    order = topological_order([b])
    assert order.index(x) < order.index(a) < order.index(b)
    assert len(order) == len(set(map(id, order)))


def test_graph_is_iterative_for_deep_chains():
    x = gc.input("x", (1,))
    y = x
    for _ in range(5000):  # deeper than Python's recursion limit
        y = gc.tanh(y)
    assert len(Graph([y])) == 5001


def test_networkx_view_has_an_edge_per_input_slot():
    x = gc.input("x", (2,))
    y = x * x
    g = Graph([y]).to_networkx()
    assert g.number_of_nodes() == 2
    slots = sorted(d["slot"] for _, _, d in g.edges(data=True))
    assert slots == [0, 1]


def test_building_and_running_a_graph_leaves_networkx_unimported():
    """networkx costs ~0.35 s to import; only the networkx view needs it."""
    program = ("import sys, numpy as np, graphc as gc\n"
               "x = gc.input('x', (2,))\n"
               "gc.compile([x], gc.grad(gc.sum(gc.exp(x)), [x]), backend='numpy')"
               "(np.ones(2, np.float32))\n"
               "assert 'networkx' not in sys.modules, 'networkx was imported'\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_node_records_the_user_line_that_built_it():
    x = gc.input("x", (2,))
    y = gc.exp(x)
    assert y.origin.endswith(f"test_node.py:{sys_line() - 1}")


def sys_line():
    import inspect
    return inspect.currentframe().f_back.f_lineno


def test_shapes_are_sympy_free_when_static():
    x = gc.input("x", (2, 3))
    assert all(type(d) is int for d in (x.T @ x).shape)
    assert not any(isinstance(d, sympy.Basic) for d in x.reshape(-1).shape)


def test_scalar_constants_are_zero_dimensional_private_copies():
    assert gc.constant(1.0).shape == ()
    assert (gc.input("s", ()) * 2.0).shape == ()
    source = np.ones(2)
    c = gc.constant(source)
    source[0] = 5.0
    assert c.value[0] == 1.0 and not c.value.flags.writeable
