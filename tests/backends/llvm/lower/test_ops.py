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


# Each case alone, in the runs the whole-table programs below do not make: those compile
# every case's float32 forward and float64 gradient, optimized, for the host and each
# level (the same code a case alone gets, one compile instead of hundreds).
RUNS = [("float64", True), ("float64", False)]
FORWARD = [pytest.param(c, d, o, id=f"{c.name}-{d}-{'opt' if o else 'raw'}")
           for c in CASES for d, o in RUNS]


@pytest.mark.parametrize("case,float_dtype,optimize", FORWARD)
def test_forward(case, float_dtype, optimize):
    got, expected = _compile_both(case, float_dtype, optimize, grad=False)
    _check(got, expected, float_dtype)


GRAD_RUNS = [("float32", False)]
GRAD_CASES = [c for c in CASES if c.grad]


@pytest.mark.parametrize("float_dtype,optimize", GRAD_RUNS,
                         ids=[f"{d}-{'opt' if o else 'raw'}" for d, o in GRAD_RUNS])
@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_gradient(case, float_dtype, optimize):
    got, expected = _compile_both(case, float_dtype, optimize, grad=True)
    _check(got, expected, float_dtype)




def _code_choices(t: target.Target) -> tuple:
    """What the lowerings choose their code by (register tiles, vector widths, blocks)."""
    return (t.vector_bytes, t.vector_registers, t.fma, t.native_vector_bytes, t.caches,
            t.tuning)


# The x86-64 levels this host can run (each has its own register tiles: 6 x 16 float32
# GEMM tiles on 16-register AVX2, 8 x 32 on AVX-512), and the host's own code unless a
# level makes the same choices (then the IR is the same and only LLVM's scheduling for
# the CPU differs; every other LLVM test runs on the host).
LEVELS = [name for name in ("x86-64-v2", "x86-64-v3", "x86-64-v4")
          if target.host_target().x86 and not target.resolve(name).missing_on_host()]
if all(_code_choices(target.resolve(name)) != _code_choices(target.resolve("host"))
       for name in LEVELS):
    LEVELS.insert(0, "host")


def _table_program(cases, grad: bool):
    """One program computing every case (float32 where it has it), or with `grad` the
    gradient of each case's sum(out * out) (float64): inputs, outputs, arrays, and the
    case each output belongs to. One compile per target instead of one per case."""
    inputs, outputs, arrays, owners = [], [], [], []
    for k, case in enumerate(cases):
        dtype = "float64" if grad or not case.float32 else "float32"
        nodes, values = case_inputs(case, dtype, prefix=f"c{k}_")
        out = case.build(*nodes)
        outs = gc.grad(gc.sum(out * out), [n for n in nodes if n.dtype.kind == "f"]) \
            if grad else [out]
        inputs += nodes
        arrays += values
        outputs += outs
        owners += [(case.name, dtype)] * len(outs)
    return inputs, outputs, arrays, owners


# The table in PARTS programs per target (parts run on any worker; one program of all
# cases compiled slower than its parts): cases with symbolic dims bound to their own
# values run apart, in the last part.
PARTS = 3
TOGETHER = [c for c in CASES if not c.bindings]
APART = [c for c in CASES if c.bindings]


def _part(k: int) -> list[list]:
    """The case groups of part k, one program each."""
    groups = [TOGETHER[k::PARTS]]
    return groups + [[c] for c in APART] if k == PARTS - 1 else groups


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("grad", [False, True], ids=["forward", "gradient"])
@pytest.mark.parametrize("level", LEVELS)
def test_the_table_on_the_host_and_each_x86_level(level, grad, part):
    """Every case, forward (float32 where the case has it) or gradient (float64),
    optimized, compiled for the level, against the NumPy reference."""
    for cases in _part(part):
        cases = [c for c in cases if c.grad] if grad else cases
        if not cases:
            continue
        inputs, outputs, arrays, owners = _table_program(cases, grad)
        got = gc.compile(inputs, outputs, target=level)(*arrays)
        expected = gc.compile(inputs, outputs, backend="numpy")(*arrays)
        for g, e, (name, dtype) in zip(got, expected, owners, strict=True):
            try:
                _check(g, e, dtype)
            except AssertionError as exc:
                raise AssertionError(f"case {name} on {level}: {exc}") from None


@pytest.mark.parametrize("grad", [False, True], ids=["forward", "gradient"])
def test_the_table_emits_for_aarch64(grad):
    """Object code for 64-bit ARM (built, never run here): no x86 intrinsic in the IR."""
    cases = [c for c in CASES if c.grad] if grad else CASES
    for group in [[c for c in cases if not c.bindings]] + [[c] for c in cases if c.bindings]:
        inputs, outputs, arrays, _ = _table_program(group, grad)
        variant = gc.compile(inputs, outputs, target="aarch64").compiled(*arrays)
        assert variant.target.triple.startswith("aarch64")
        assert "llvm.x86" not in variant.ir
        assert all(obj[:4] == b"\x7fELF" and obj[18] == 183  # e_machine: EM_AARCH64
                   for obj in variant.objects)


def test_every_op_has_a_lowering():
    lowered = set(table())
    missing = sorted(set(all_ops()) - lowered)
    assert not missing, f"ops without an LLVM lowering: {missing}"
