"""The LLVM backend's log and erf, emitted as plain (vectorizable) arithmetic, against
NumPy's log and math.erf over their whole ranges: subnormals, zeros, infinities, NaN and
negatives included."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gc

# Measured maximum errors: log 5 ulps (float32) / 3 ulps (float64); erf 3.0e-7 / 6.8e-16
# relative where the result is normal. The bounds leave a factor of about 3 over that.
LOG_ULPS = {"float32": 16, "float64": 8}
ERF_RTOL = {"float32": 1e-6, "float64": 2e-15}


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


def test_gelu_uses_the_same_erf():
    values = np.linspace(-6, 6, 1001)
    got = _unary(gc.gelu, values, "float64")
    expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in values])
    # For x << 0, 1 + erf(x) cancels: both sides are off by about |x| ulps of 1 there.
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15)
