"""graphc's dtypes (graphc/dtypes.py), the small ints uint8, int8 and int16 among them:
NumPy's promotion, weak Python scalars (and the ints out of their range), inputs and casts
on both backends, the unsigned order of uint8, and checkpoints."""

from __future__ import annotations

import itertools
import platform

import numpy as np
import pytest

import graphc as gc
from graphc import checkpoint, dtypes
from graphc.errors import GraphError

BACKENDS = ["numpy", "llvm"]
NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float32", "float64"]
NUMBERS = NAMES[1:]


def test_supported_dtypes_and_kinds():
    assert [d.name for d in dtypes.SUPPORTED] == NAMES
    assert [d.name for d in dtypes.INTS] == ["uint8", "int8", "int16", "int32", "int64"]
    assert dtypes.is_unsigned(np.dtype("uint8")) and not dtypes.is_unsigned(np.dtype("int8"))
    with pytest.raises(TypeError, match="dtype uint16 is not supported"):
        dtypes.as_dtype("uint16")


def test_promote_tells_python_scalars_from_each_other_and_from_dtypes():
    # promote caches by its arguments: 1, 1.0 and True are one dict key, and must not be
    i8 = np.dtype("int8")
    assert dtypes.promote(i8, i8) == i8
    assert dtypes.promote(i8, 1) == i8
    assert dtypes.promote(i8, 1.0) == np.dtype("float64")
    assert dtypes.promote(i8, 1) == i8
    assert dtypes.promote(np.dtype("float32"), np.dtype("int64")) == np.dtype("float64")


@pytest.mark.parametrize("a, b", list(itertools.product(NUMBERS, NUMBERS)))
def test_promotion_is_numpys(a, b):
    x, y = gc.input("x", (2,), a), gc.input("y", (2,), b)
    assert (x + y).dtype == np.result_type(np.dtype(a), np.dtype(b))


def test_weak_python_scalars_take_the_small_int_dtype_or_are_refused_out_of_range():
    u, i = gc.input("u", (2,), "uint8"), gc.input("i", (2,), "int8")
    assert (u + 1).dtype == np.uint8 and (255 - u).dtype == np.uint8
    assert (i * -128).dtype == np.int8 and (u * 1.5).dtype == np.float64
    with pytest.raises(GraphError, match=r"add: the Python integer 300 is out of bounds for "
                                         r"uint8 \(0\.\.255\).*\(at .*test_dtypes.py:\d+\)"):
        u + 300
    with pytest.raises(GraphError, match="mul: the Python integer -129 is out of bounds"):
        i * -129
    with pytest.raises(GraphError, match="maximum: the Python integer -1 is out of bounds"):
        gc.maximum(u, -1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["uint8", "int8", "int16"])
def test_inputs_arithmetic_and_wrapping_as_numpy(name, backend):
    info = np.iinfo(name)
    values = np.array([info.min, info.min + 1, 0, 1, 100, info.max], name)
    other = np.array([3, 1, info.max, 0, 7, 200 if name == "uint8" else 2], name)
    x, y = gc.input("x", (6,), name), gc.input("y", (6,), name)
    outs = [x + y, x - y, x * y, -x, gc.abs(x), x ** 2, gc.maximum(x, y), gc.minimum(x, y),
            x > y, x <= 100, gc.sign(x), gc.relu(x), x / y, gc.sum(x), gc.max(x), gc.min(x),
            gc.argmax(x), gc.mean(x), gc.where(x > y, x, y), x ** y]
    got = gc.compile([x, y], outs, backend=backend)(values, other)
    with np.errstate(all="ignore"):
        expected = [values + other, values - other, values * other, -values, np.abs(values),
                    values ** 2, np.maximum(values, other), np.minimum(values, other),
                    values > other, values <= 100, np.sign(values),
                    np.maximum(values, np.array(0, name)), values / other,
                    np.sum(values, dtype=np.int64), values.max(), values.min(),
                    np.argmax(values), np.mean(values), np.where(values > other, values, other),
                    values ** other]  # a uint8 exponent of 200 is 200, not -56
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.asarray(e).dtype
        np.testing.assert_array_equal(g, e)


def test_a_wrong_dtype_is_refused_naming_the_input():
    x = gc.input("img", (2,), "uint8")
    for backend in BACKENDS:
        f = gc.compile([x], x + 1, backend=backend)
        with pytest.raises(TypeError, match="input 'img': expected dtype uint8, got int8"):
            f(np.zeros(2, np.int8))
        np.testing.assert_array_equal(f(np.array([1, 255], np.uint8)), [2, 0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_python_ints_for_scalar_inputs_fit_or_are_refused(backend):
    for name in ("uint8", "int8", "int16", "int32"):
        x = gc.input("k", (), name)
        f = gc.compile([x], x * 1, backend=backend)
        assert f(5) == 5 and f(5).dtype == np.dtype(name)
        info = np.iinfo(name)
        for bad in (info.min - 1, info.max + 1):
            with pytest.raises(ValueError, match=f"input 'k': {bad} is out of the range of "
                                                 f"{name}"):
                f(bad)


FLOATS_TO_CAST = [0.0, -0.0, 0.5, -0.5, 1.7, -1.7, 127.9, -128.9, 255.9, 300.7, -300.7,
                  70000.5, 3e9, -3e9, 1e20, np.inf, -np.inf, np.nan]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("src", NAMES)
def test_casts_to_every_dtype_as_numpy(src, backend):
    if np.dtype(src).kind == "f":
        values = np.array(FLOATS_TO_CAST, src)
    elif src == "bool":
        values = np.array([True, False, True])
    else:
        info = np.iinfo(src)
        values = np.array([info.min, -1 if info.min else 1, 0, 1, 127, info.max], src)
    x = gc.input("x", values.shape, src)
    targets = [d for d in NAMES if d != src]
    got = gc.compile([x], [gc.cast(x, d) for d in targets], backend=backend)(values)
    for dst, g in zip(targets, got, strict=True):
        kept = values
        if np.dtype(src).kind == "f" and np.dtype(dst).kind in "iu" \
                and platform.machine() not in ("x86_64", "AMD64"):
            # Out-of-range floats to ints are CPU-defined (NumPy gives x86's results here).
            kept = np.isfinite(values) & (np.abs(values) < 127)
            g, kept = g[kept], values[kept]
        with np.errstate(all="ignore"):
            expected = kept.astype(dst)
        assert g.dtype == np.dtype(dst)
        np.testing.assert_array_equal(g, expected, err_msg=f"{src} -> {dst}")


def test_small_int_params_update_in_place_and_round_trip_through_checkpoints(tmp_path):
    counts = gc.param("counts", np.array([250, 3], np.uint8))
    offsets = gc.param("offsets", np.array([-100, 7], np.int8))
    wide = gc.param("wide", np.array([-30000, 12], np.int16))
    step = gc.compile([], [counts + 0], updates={counts: counts + 10, offsets: offsets * 2,
                                                 wide: wide - 5000})
    step()
    np.testing.assert_array_equal(counts.value, [4, 13])   # wrapped, as NumPy
    np.testing.assert_array_equal(offsets.value, [56, 14])
    np.testing.assert_array_equal(wide.value, [30536, -4988])
    path = checkpoint.save(tmp_path / "small.npz", {"counts": counts.value,
                                                    "offsets": offsets.value,
                                                    "wide": wide.value})
    loaded = checkpoint.load(path)
    for name, param in (("counts", counts), ("offsets", offsets), ("wide", wide)):
        assert loaded[name].dtype == param.value.dtype
        np.testing.assert_array_equal(loaded[name], param.value)
