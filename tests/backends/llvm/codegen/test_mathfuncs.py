"""The LLVM backend's log and erf, emitted as plain (vectorizable) arithmetic, against
NumPy's log and math.erf over their whole ranges: subnormals, zeros, infinities, NaN and
negatives included."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gc

# Measured maximum errors: log 5 ulps (float32) / 3 ulps (float64); erf 1.6e-7 / 6.8e-16
# relative where the result is normal. The bounds leave a factor of about 3 over that.
LOG_ULPS = {"float32": 16, "float64": 8}
ERF_RTOL = {"float32": 1e-6, "float64": 2e-15}
# float32 erf's largest errors over every float32 in [2**-30, 4.5], measured against a
# float64 erf accurate to 3e-15: 1.564e-7 relative (under 1.4 units of 2**-23; below 2),
# 4.07e-8 absolute from 2 on (0.68 of an ulp of the results there, just below 1).
ERF32_MAX_ERROR = 1.6e-7
ERF32_MAX_ERROR_FROM_2 = 4.1e-8


def _unary(fn, values, dtype):
    x = gc.input("x", values.shape, dtype)
    return gc.compile([x], fn(x))(values)


def _ulps(got, expected, dtype):
    spacing = np.spacing(np.abs(expected).astype(dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - expected.astype(np.float64)) / spacing


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_over_the_whole_range(dtype):
    info = np.finfo(dtype)
    values = np.concatenate([
        np.geomspace(info.smallest_subnormal, info.max / 2, 100_001).astype(dtype),
        np.array([info.max], dtype),
        np.linspace(0.5, 2.0, 50_001).astype(dtype),
        np.nextafter(np.array([1.0, 1.0], dtype), np.array([0.0, 2.0], dtype))])
    got = _unary(gc.log, values, dtype)
    expected = np.log(values)
    assert got.dtype == np.dtype(dtype)
    exact = expected == 0
    np.testing.assert_array_equal(got[exact], 0.0)
    assert _ulps(got[~exact], expected[~exact], dtype).max() <= LOG_ULPS[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_special_values(dtype):
    values = np.array([0.0, -0.0, -1.0, -np.inf, np.inf, np.nan, 1.0], dtype)
    got = _unary(gc.log, values, dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(got, np.log(values))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_erf_over_the_whole_range(dtype):
    info = np.finfo(dtype)
    values = np.concatenate([np.linspace(-7, 7, 100_001),
                             np.geomspace(info.tiny, 1e30, 20_001),
                             -np.geomspace(info.tiny, 1e30, 2_001)]).astype(dtype)
    got = _unary(gc.erf, values, dtype)
    expected = np.array([math.erf(float(v)) for v in values])
    np.testing.assert_allclose(got, expected, rtol=ERF_RTOL[dtype], atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_erf_special_values_and_subnormals(dtype):
    info = np.finfo(dtype)
    values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.smallest_subnormal,
                       -info.smallest_subnormal * 1000], dtype)
    got = _unary(gc.erf, values, dtype)
    expected = np.array([math.erf(float(v)) if not np.isnan(v) else np.nan for v in values])
    np.testing.assert_array_equal(got[:5], expected[:5])
    assert np.signbit(got[1]) and not np.signbit(got[0])
    # Subnormal results: within a few of their (absolute) ulps.
    np.testing.assert_allclose(got[5:], expected[5:], rtol=0, atol=8 * info.smallest_subnormal)


def test_float32_erf_error_bound_over_a_dense_grid():
    # Every 2**-17 from 0 to 4.5 (both branches, their meeting point 2 and the clamp at 4)
    # and a geometric sweep of small values; erf is odd, the negatives are the same code.
    values = np.concatenate([np.arange(1, 9 * 2**16) * 2.0**-17,
                             np.geomspace(2.0**-40, 1.0, 20_001)]).astype(np.float32)
    got = _unary(gc.erf, values, "float32").astype(np.float64)
    expected = np.array([math.erf(float(v)) for v in values])
    error = np.abs(got - expected)
    assert np.max(error / expected) <= ERF32_MAX_ERROR
    assert np.max(error[values >= 2]) <= ERF32_MAX_ERROR_FROM_2


def test_float32_erf_is_one_from_4_on():
    values = np.array([4.0, np.nextafter(4.0, 5.0), 4.5, 30.0, 3e38, np.inf], np.float32)
    np.testing.assert_array_equal(_unary(gc.erf, values, "float32"), np.ones(6, np.float32))
    np.testing.assert_array_equal(_unary(gc.erf, -values, "float32"), -np.ones(6, np.float32))


def test_gelu_uses_the_same_erf():
    values = np.linspace(-6, 6, 1001)
    got = _unary(gc.gelu, values, "float64")
    expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in values])
    # For x << 0, 1 + erf(x) cancels: both sides are off by about |x| ulps of 1 there.
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15)
