"""Long elementwise chains (issue 13, item 11): fusion bounds the depth of a kernel's
expression, so sympy, the NumPy evaluator and the LLVM emitter never recurse deeper than
that bound; walks over graphs are iterative, so a graph deeper than Python's recursion
limit compiles."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.ir.graph import Graph
from graphc.passes import optimize
from graphc.passes.expression import MAX_DEPTH
from tests.backends_available import BACKENDS

from .helpers import program, run


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """LLVM compiles go to a fresh disk cache, never ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


X = np.linspace(-2, 2, 32, dtype=np.float32).reshape(4, 8)


def chain(steps: int, x: gc.Node | None = None) -> tuple[gc.Node, gc.Node]:
    """(x, h): h = tanh(h) * 0.9 + 0.01 applied `steps` times (3 nodes a step)."""
    x = gc.input("x", (4, 8), "float32") if x is None else x
    h = x
    for _ in range(steps):
        h = gc.tanh(h) * 0.9 + 0.01
    return x, h


def reference(steps: int) -> np.ndarray:
    h = X
    for _ in range(steps):
        h = np.tanh(h) * np.float32(0.9) + np.float32(0.01)
    return h


def depth(expr: sympy.Basic) -> int:
    """The number of levels of a sympy expression tree (a symbol or number is 0)."""
    deepest, stack = 0, [(expr, 0)]
    while stack:
        e, d = stack.pop()
        deepest = max(deepest, d)
        stack += [(a, d + 1) for a in e.args]
    return deepest


def kernel_expressions(prog) -> list[sympy.Basic]:
    out = []
    for node in Graph(prog.results).nodes:
        if "expr" in node.attrs:
            out.append(node.attrs["expr"])
        out += list(node.attrs.get("exprs", ()))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_270_node_chain_compiles_and_matches_numpy(backend):
    x, h = chain(90)  # raised RecursionError in sympy on the LLVM backend
    out = gc.compile([x], h, backend=backend)(X)
    np.testing.assert_allclose(out, reference(90), rtol=1e-5, atol=1e-6)


def test_fused_expressions_are_no_deeper_than_the_bound():
    """Elementwise fusion and reduction fusion cut a chain into kernels of bounded depth
    that compute what the chain computes."""
    x, h = chain(200)
    before = program([h, gc.sum(h * h)], [x])
    after = optimize(before)
    exprs = kernel_expressions(after)
    assert exprs and max(map(depth, exprs)) <= MAX_DEPTH
    assert len(exprs) >= 600 // MAX_DEPTH
    for got, want in zip(run(after, X), run(before, X)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("steps", [pytest.param(1200, id="3600-nodes"),
                                   pytest.param(6667, id="20000-nodes", marks=pytest.mark.slow)])
def test_a_chain_deeper_than_the_recursion_limit_compiles_and_differentiates(steps):
    """Graph walks, autodiff's reverse walk and the NumPy backend, optimized and not, on a
    chain several times deeper than Python's recursion limit."""
    x, h = chain(steps)
    want = reference(steps)
    for optimized in (False, True):
        out = gc.compile([x], h, backend="numpy", optimize=optimized)(X)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)
    (g,) = gc.grad(gc.sum(h), [x])
    assert np.isfinite(gc.compile([x], g, backend="numpy", optimize=False)(X)).all()
