"""The reference erf for narrow floats (graphc/ops/erf_numpy.py): computed from
interpolants, it must round to math.erf's value in float32 and float16 everywhere, and
keep erf's signs, limits and NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest

from graphc.ops.erf_numpy import _erf_float64, erf


def _math_erf(x: np.ndarray) -> np.ndarray:
    return np.array([math.erf(v) for v in x.astype(np.float64).ravel()]).reshape(x.shape)


def test_float64_interpolants_are_within_a_few_ulps_of_math_erf():
    x = np.concatenate([np.linspace(-7, 7, 100_001), np.geomspace(1e-300, 7, 5_000),
                        np.linspace(1.999, 2.001, 101), np.linspace(5.99, 6.01, 101)])
    x = np.concatenate([x, -x])
    expected = _math_erf(x)
    relative = np.abs(_erf_float64(x) - expected) / np.maximum(np.abs(expected), 1e-300)
    assert relative.max() < 1e-14


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_narrow_floats_round_to_math_erf(dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 2, 200_000), rng.uniform(-7, 7, 50_000),
                        np.geomspace(1e-30, 1e-3, 1000)]).astype(dtype)
    np.testing.assert_array_equal(erf(x), _math_erf(x).astype(dtype))
    assert erf(x).dtype == dtype


def test_signs_limits_and_nan():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 7.0, -7.0], np.float32)
    out = erf(x)
    np.testing.assert_array_equal(out, [0.0, -0.0, 1.0, -1.0, np.nan, np.float32(1e-40) *
                                        np.float32(2 / math.sqrt(math.pi)), -out[5], 1, -1])
    assert np.signbit(out[1]) and not np.signbit(out[0])
    np.testing.assert_array_equal(erf(np.array([0.5, np.nan])), [math.erf(0.5), np.nan])
