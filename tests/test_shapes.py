"""Shapes (graphc/shapes.py): sizes, dim equality and broadcasting of symbolic dims, which
are cached, and never across sympy's evaluated and unevaluated modes."""

import pytest
import sympy

from graphc.shapes import broadcast, dims_equal, size, symbol

N, M = symbol("N"), symbol("M")


def test_size_of_static_and_symbolic_shapes():
    assert size((2, 3, 4)) == 24 and isinstance(size((2, 3)), int)
    assert size(()) == 1
    assert size([N, 3]) == 3 * N
    assert size((N, 0)) == 0


def test_a_size_computed_unevaluated_is_not_served_evaluated_or_back():
    evaluated = size((N, 2, 3))
    with sympy.evaluate(False):
        unevaluated = size((N, 2, 3))
        assert size((N, 2, 3)) is not evaluated
    assert unevaluated != evaluated  # an unevaluated product keeps its factors
    assert size((N, 2, 3)) == evaluated == 6 * N


def test_dims_equal_up_to_simplification():
    assert dims_equal(N, N) and dims_equal(2 * N, N + N) and dims_equal(3, 3)
    assert not dims_equal(N, M) and not dims_equal(N, 3) and not dims_equal(2, 3)
    assert dims_equal(N * (M + 1), N * M + N)


def test_broadcast_of_equal_and_different_shapes():
    assert broadcast((N, 3), (N, 3)) == (N, 3)
    assert broadcast([N, 3], [N, 3]) == (N, 3)
    assert broadcast((N, 1), (1, 3), (3,)) == (N, 3)
    assert broadcast() == ()
    with pytest.raises(ValueError, match="do not broadcast"):
        broadcast((N, 3), (M, 3))
