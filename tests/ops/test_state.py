"""gc.attach_update (graphc/ops/state.py): updates carried by values, collected by
gc.compile on both backends: applied with the step, the user's own updates winning, two
updates of one param chained in build order, carried by gradients, listed by
gc.attached_updates, refused with a clear message when malformed."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

BACKENDS = ["numpy", "llvm"]


def _counter():
    return gc.param("count", np.zeros(3, np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_step_applies_an_attached_update(backend):
    count = _counter()
    x = gc.input("x", ("N", 3))
    y = gc.attach_update(x * 2.0, count, count + gc.mean(x, 0))
    f = gc.compile([x], y, backend=backend)
    out = f(np.ones((4, 3), np.float32))
    np.testing.assert_array_equal(out, np.full((4, 3), 2.0, np.float32))
    f(np.full((2, 3), 3.0, np.float32))
    np.testing.assert_array_equal(count.value, np.full(3, 4.0, np.float32))
    assert f.source.updates[0][0] is count and all(
        n.op != "attach_update" for n in f.graph)


@pytest.mark.parametrize("backend", BACKENDS)
def test_own_updates_win_and_two_updates_chain_in_build_order(backend):
    count = _counter()
    x = gc.input("x", (3,))
    first = gc.attach_update(x, count, count * 2.0 + 1.0)
    second = gc.attach_update(first * 3.0, count, count * 10.0)
    f = gc.compile([x], second, backend=backend)
    f(np.zeros(3, np.float32))
    np.testing.assert_array_equal(count.value, np.full(3, 10.0, np.float32))  # (0*2+1)*10
    own = gc.compile([x], second, updates={count: count - 1.0}, backend=backend)
    own(np.zeros(3, np.float32))
    np.testing.assert_array_equal(count.value, np.full(3, 9.0, np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_carry_the_update_once(backend):
    count, w = _counter(), gc.param("w", np.ones(3, np.float32))
    x = gc.input("x", (3,))
    y = gc.attach_update(x * w, count, count + 1.0)
    (g,) = gc.grad(gc.sum(y * y), [w])
    assert set(gc.attached_updates(g)) == {count}
    f = gc.compile([x], g, backend=backend)
    np.testing.assert_array_equal(f(np.full(3, 2.0, np.float32)), np.full(3, 8.0, np.float32))
    np.testing.assert_array_equal(count.value, np.ones(3, np.float32))


def test_malformed_updates_are_refused():
    count = _counter()
    x = gc.input("x", (3,))
    with pytest.raises(gc.GraphError, match="attach_update: the target must be a gc.param"):
        gc.attach_update(x, x, x)
    with pytest.raises(gc.GraphError, match=r"has shape \(3,\), its new value \(2,\)"):
        gc.attach_update(x, count, gc.input("y", (2,)))
    with pytest.raises(gc.GraphTypeError, match="is float32, its new value float64"):
        gc.attach_update(x, count, gc.input("z", (3,), "float64"))
