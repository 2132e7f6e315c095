"""Every op's NumPy reference against the table's independent expectation, and every
differentiable op's gradient against central finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.ops import all_ops
from tests.ops.cases import CASES
from tests.ops.harness import gradient_check, ops_of, run_case

IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reference_float64(case):
    result, arrays = run_case(case, "numpy", "float64")
    expected = np.asarray(case.expected(*arrays))
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=case.rtol64, atol=case.atol)


@pytest.mark.parametrize("case", [c for c in CASES if c.float32], ids=[c.name for c in CASES
                                                                       if c.float32])
def test_reference_float32(case):
    result, arrays = run_case(case, "numpy", "float32")
    expected = np.asarray(case.expected(*(a.astype(np.float64) if a.dtype == np.float32 else a
                                          for a in arrays)))
    if any(a.dtype == np.float32 for a in arrays) and expected.dtype == np.float64:
        assert result.dtype == np.float32, "float32 inputs must give a float32 result"
    # float32 arithmetic against a float64 expectation: a few float32 ulps.
    np.testing.assert_allclose(result, expected, rtol=case.rtol32, atol=1e-6)


GRAD_CASES = [c for c in CASES if c.grad]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_gradient_matches_finite_differences(case):
    analytic, numeric = gradient_check(case)
    assert analytic, "a gradient case needs a float input"
    for a, n in zip(analytic, numeric):
        # central differences with eps 1e-6 in float64 are accurate to about 1e-8
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-7)


def test_every_op_is_in_the_table():
    covered = set()
    for case in CASES:
        covered |= ops_of(case)
    missing = set(all_ops()) - covered
    assert not missing, f"ops without a row in tests/ops/cases.py: {sorted(missing)}"
