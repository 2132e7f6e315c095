"""Every case of the op table (tests/ops/cases.py), forward and gradient, on the LLVM
backend against the NumPy backend, float64 and float32, optimized (fused kernels) and
unoptimized (one kernel per op), for the host and for every lower x86-64 level it runs
(their register tiles differ); the whole table is emitted for aarch64, so no x86-only
construct creeps in; and every registered op has an LLVM lowering."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.lower import table
from graphc.backends.llvm.runtime import target
from graphc.ops import all_ops
from tests.ops.cases import CASES
from tests.ops.harness import case_inputs

RTOL = {"float64": 1e-10, "float32": 1e-4}
# Results near zero (sin, a difference, a gradient that cancels) are compared with an
# absolute bound: a few ulps of the O(1) values the cases compute from.
ATOL = {"float64": 1e-12, "float32": 1e-6}


def _compile_both(case, float_dtype, optimize, grad, target=None):
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
    options = {} if target is None else {"target": target}
    results.append(gc.compile(inputs, out, optimize=optimize, **options)(*args))
    results.append(gc.compile(inputs, out, backend="numpy", optimize=optimize)(*args))
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
# (case, float dtype, optimize): float32 runs only for the cases that have them.
FORWARD = [pytest.param(c, d, o, id=f"{c.name}-{d}-{'opt' if o else 'raw'}")
           for c in CASES for d, o in RUNS if d == "float64" or c.float32]


@pytest.mark.parametrize("case,float_dtype,optimize", FORWARD)
def test_forward(case, float_dtype, optimize):
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


# The x86-64 levels below the host's own code that this host can run (each has its own
# register tiles: 6 x 16 float32 GEMM tiles on 16-register AVX2, 8 x 32 on AVX-512).
LEVELS = [name for name in ("x86-64-v2", "x86-64-v3", "x86-64-v4")
          if target.host_target().x86 and not target.resolve(name).missing_on_host()]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_x86_level(case, level):
    """Forward (float32 where the case has it) and gradient (float64), optimized."""
    float_dtype = "float32" if case.float32 else "float64"
    got, expected = _compile_both(case, float_dtype, True, grad=False, target=level)
    _check(got, expected, float_dtype)
    if case.grad:
        got, expected = _compile_both(case, "float64", True, grad=True, target=level)
        _check(got, expected, "float64")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_table_emits_for_aarch64(case):
    """Object code for 64-bit ARM (built, never run here): no x86 intrinsic in the IR."""
    nodes, arrays = case_inputs(case, "float32" if case.float32 else "float64")
    out = case.build(*nodes)
    if case.grad:
        out = gc.grad(gc.sum(out * out), [n for n in nodes if n.dtype.kind == "f"])
    variant = gc.compile(nodes, out, target="aarch64").compiled(*arrays)
    assert variant.target.triple.startswith("aarch64")
    assert "llvm.x86" not in variant.ir
    assert all(obj[:4] == b"\x7fELF" and obj[18] == 183 for obj in variant.objects)  # EM_AARCH64


def test_every_op_has_a_lowering():
    lowered = set(table())
    missing = sorted(set(all_ops()) - lowered)
    assert not missing, f"ops without an LLVM lowering: {missing}"
