"""The LLVM backend's plain-arithmetic log1p, expm1, sinh, cosh (mathfuncs.py) and atan,
asin, acos, atan2 (inverse.py), and exp at large arguments, against NumPy's over their
whole ranges, and their special values (zeros' signs, infinities, NaN) exactly."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

# Measured maximum errors against NumPy's float64 results rounded to the dtype: 3 ulps
# (float32 and float64) for every function here; exp of float64 1 ulp. The bound leaves
# a factor of 2.
ULPS = 6


def _run(fn, dtype, *values):
    xs = [gc.input(f"x{i}", v.shape, dtype) for i, v in enumerate(values)]
    return gc.compile(xs, fn(*xs))(*values)


def _max_ulps(got, expected, dtype):
    spacing = np.spacing(np.abs(expected).astype(dtype)).astype(np.float64)
    return (np.abs(got.astype(np.float64) - expected.astype(np.float64)) / spacing).max()


def _ranges(dtype):
    info = np.finfo(dtype)
    geometric = np.geomspace(info.tiny, info.max / 4, 40_001)
    everything = np.concatenate([np.linspace(-10, 10, 40_001), geometric, -geometric])
    unit = np.concatenate([np.linspace(-1, 1, 40_001), 1 - np.geomspace(1e-16, 1, 2_001),
                           -1 + np.geomspace(1e-16, 1, 2_001), np.geomspace(info.tiny, 1, 2_001)])
    return everything.astype(dtype), unit.astype(dtype)


FUNCTIONS = {  # name: (builder, NumPy's function, which values)
    "log1p": (gc.log1p, np.log1p, lambda v, u: np.concatenate([v[v > -1], u[u >= -1]])),
    "expm1": (gc.expm1, np.expm1, lambda v, u: v[np.abs(v) < 700]),
    "sinh": (gc.sinh, np.sinh, lambda v, u: v[np.abs(v) < 720]),
    "cosh": (gc.cosh, np.cosh, lambda v, u: v[np.abs(v) < 720]),
    "exp": (gc.exp, np.exp, lambda v, u: v[np.abs(v) < 720]),
    "atan": (gc.atan, np.arctan, lambda v, u: v),
    "asin": (gc.asin, np.arcsin, lambda v, u: u),
    "acos": (gc.acos, np.arccos, lambda v, u: u),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_over_the_whole_range(name, dtype):
    builder, reference, pick = FUNCTIONS[name]
    values = pick(*_ranges(dtype))
    with np.errstate(all="ignore"):
        expected = reference(values.astype(np.float64)).astype(dtype)
    got = _run(builder, dtype, values)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(expected))
    finite = np.isfinite(expected) & (expected != 0)
    np.testing.assert_array_equal(got[expected == 0], expected[expected == 0])
    assert _max_ulps(got[finite], expected[finite], dtype) <= ULPS


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_atan2_over_magnitudes_and_quadrants(dtype):
    rng = np.random.default_rng(0)
    y, x = (rng.normal(size=40_000) * 10.0 ** rng.uniform(-30, 30, 40_000) for _ in range(2))
    y, x = y.astype(dtype), x.astype(dtype)
    expected = np.arctan2(y.astype(np.float64), x.astype(np.float64)).astype(dtype)
    got = _run(gc.atan2, dtype, y, x)
    nonzero = expected != 0
    np.testing.assert_array_equal(got[~nonzero], expected[~nonzero])
    assert _max_ulps(got[nonzero], expected[nonzero], dtype) <= ULPS


SPECIAL = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1.0000001, -1.5, 1e-30, -1e-300]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_special_values_exactly(name, dtype):
    builder, reference, _ = FUNCTIONS[name]
    values = np.array(SPECIAL, dtype)
    with np.errstate(all="ignore"):
        expected = reference(values.astype(np.float64)).astype(dtype)
    got = _run(builder, dtype, values)
    exact = np.isnan(expected) | np.isinf(expected) | (expected == 0) | (np.abs(values) <= 1e-30)
    np.testing.assert_array_equal(got[exact], expected[exact])  # NaN where NaN
    signed = exact & ~np.isnan(expected)  # (a NaN's sign bit means nothing)
    np.testing.assert_array_equal(np.signbit(got[signed]), np.signbit(expected[signed]))
    np.testing.assert_allclose(got, expected, rtol=ULPS * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_atan2_of_zeros_infinities_and_nan_exactly(dtype):
    specials = np.array([0.0, -0.0, 2.0, -2.0, np.inf, -np.inf, np.nan], dtype)
    y, x = (a.ravel() for a in np.meshgrid(specials, specials, indexing="ij"))
    got = _run(gc.atan2, dtype, y, x)
    expected = np.arctan2(y.astype(np.float64), x.astype(np.float64)).astype(dtype)
    np.testing.assert_array_equal(got, expected)
    signed = ~np.isnan(expected)
    np.testing.assert_array_equal(np.signbit(got[signed]), np.signbit(expected[signed]))
