"""Every case of the op table (tests/ops/cases.py), forward and gradient, on the LLVM
backend against the NumPy backend, float64 and float32, optimized (fused kernels) and
unoptimized (one kernel per op); and every registered op has an LLVM lowering."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.lower import table
from graphc.ops import all_ops
from tests.ops.cases import CASES
from tests.ops.harness import case_inputs

RTOL = {"float64": 1e-10, "float32": 1e-4}
# Results near zero (sin, a difference, a gradient that cancels) are compared with an
# absolute bound: a few ulps of the O(1) values the cases compute from.
ATOL = {"float64": 1e-12, "float32": 1e-6}


def _compile_both(case, float_dtype, optimize, grad):
    nodes, arrays = case_inputs(case, float_dtype)
    out = case.build(*nodes)
    inputs, args = list(nodes), list(arrays)
    if grad:
        wrt = [n for n in nodes if n.dtype.kind == "f"]
        w = gc.input("weights", out.shape, dtype=out.dtype)
        shape = tuple(case.bindings.get(str(d), d) if not isinstance(d, int) else d
                      for d in out.shape)
        args.append(np.random.default_rng(1).normal(size=shape).astype(out.dtype))
        inputs.append(w)
        out = gc.grad(gc.sum(out * w), wrt)
    results = []
    for backend in ("llvm", "numpy"):
        fn = gc.compile(inputs, out, backend=backend, optimize=optimize)
        results.append(fn(*args))
    return results


def _check(got, expected, float_dtype):
    got = got if isinstance(got, list) else [got]
    expected = expected if isinstance(expected, list) else [expected]
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, e, rtol=RTOL[float_dtype], atol=ATOL[float_dtype])
        else:
            np.testing.assert_array_equal(g, e)


RUNS = [("float64", True), ("float32", True), ("float64", False)]


@pytest.mark.parametrize("float_dtype,optimize", RUNS,
                         ids=[f"{d}-{'opt' if o else 'raw'}" for d, o in RUNS])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forward(case, float_dtype, optimize):
    if float_dtype == "float32" and not case.float32:
        pytest.skip("the case is float64 only")
    got, expected = _compile_both(case, float_dtype, optimize, grad=False)
    _check(got, expected, float_dtype)


GRAD_RUNS = [("float64", True), ("float32", False)]
GRAD_CASES = [c for c in CASES if c.grad]


@pytest.mark.parametrize("float_dtype,optimize", GRAD_RUNS,
                         ids=[f"{d}-{'opt' if o else 'raw'}" for d, o in GRAD_RUNS])
@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_gradient(case, float_dtype, optimize):
    got, expected = _compile_both(case, float_dtype, optimize, grad=True)
    _check(got, expected, float_dtype)


def test_every_op_has_a_lowering():
    lowered = set(table())
    missing = sorted(set(all_ops()) - lowered)
    assert not missing, f"ops without an LLVM lowering: {missing}"
