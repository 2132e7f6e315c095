"""floor_divide, remainder and div(rounding_mode=...) (graphc/ops/division.py): Python's
rules on every pair of int8 and uint8 values and at the extremes of the wide ints, the
integer division by 0 (0, never a trap), floats as NumPy (IEEE specials included), in
kernels of their own and fused into kernels of other dtypes, on both backends."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.errors import GraphError, GraphTypeError

BACKENDS = ["numpy", "llvm"]


def _wrap(value: int, dtype) -> int:
    info = np.iinfo(dtype)
    span = info.max - info.min + 1
    return (value - info.min) % span + info.min


def _python(a, b, op, dtype):
    """Python's a // b, a % b or C's truncating division, 0 for b = 0, wrapped to dtype."""
    if b == 0:
        return 0
    if op == "floor":
        value = a // b
    elif op == "remainder":
        value = a % b
    else:
        value = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    return _wrap(value, dtype)


BUILD = {"floor": lambda a, b: a // b, "remainder": lambda a, b: a % b,
         "trunc": lambda a, b: gc.div(a, b, rounding_mode="trunc")}


def _compile(build, dtype, backend, *, optimize=True):
    a, b = gc.input("a", ("N",), dtype), gc.input("b", ("N",), dtype)
    return gc.compile([a, b], build(a, b), backend=backend, optimize=optimize)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("op", sorted(BUILD))
def test_every_pair_of_bytes(op, dtype, backend):
    info = np.iinfo(dtype)
    a, b = (v.ravel().astype(dtype) for v in np.meshgrid(
        np.arange(info.min, info.max + 1), np.arange(info.min, info.max + 1), indexing="ij"))
    got = _compile(BUILD[op], dtype, backend)(a, b)
    expected = np.array([_python(x, y, op, dtype) for x, y in zip(a.tolist(), b.tolist())],
                        dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int16", "int32", "int64"])
@pytest.mark.parametrize("op", sorted(BUILD))
def test_extremes_of_wide_ints(op, dtype, backend):
    info = np.iinfo(dtype)
    edges = [info.min, info.min + 1, -7, -1, 0, 1, 7, info.max - 1, info.max]
    a, b = (v.ravel().astype(dtype) for v in np.meshgrid(edges, edges, indexing="ij"))
    got = _compile(BUILD[op], dtype, backend)(a, b)
    expected = [_python(x, y, op, dtype) for x, y in zip(a.tolist(), b.tolist())]
    np.testing.assert_array_equal(got, np.array(expected, dtype))


def test_integer_division_by_zero_is_zero_as_numpy_and_never_traps():
    a = np.array([5, -5, 0, np.iinfo(np.int32).min], np.int32)
    zeros = np.zeros(4, np.int32)
    for backend in BACKENDS:
        for op in BUILD:
            np.testing.assert_array_equal(_compile(BUILD[op], "int32", backend)(a, zeros), 0)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(np.floor_divide(a, zeros), 0)  # NumPy's value
        np.testing.assert_array_equal(np.remainder(a, zeros), 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_floats_as_numpy_with_infinities_nan_and_zeros(dtype, backend):
    specials = [0.0, -0.0, 1.5, -1.5, 7.0, -7.0, 0.1, np.inf, -np.inf, np.nan, 1e30]
    a, b = (v.ravel().astype(dtype) for v in np.meshgrid(specials, specials, indexing="ij"))
    floor, rest, trunc = (_compile(BUILD[op], dtype, backend)(a, b)
                          for op in ("floor", "remainder", "trunc"))
    with np.errstate(all="ignore"):
        for got, expected in [(floor, np.floor_divide(a, b)), (rest, np.remainder(a, b)),
                              (trunc, np.trunc(a / b))]:
            np.testing.assert_array_equal(got, expected)
            signed = ~np.isnan(expected)
            np.testing.assert_array_equal(np.signbit(got[signed]), np.signbit(expected[signed]))


def test_python_float_rules_on_random_values():
    rng = np.random.default_rng(3)
    a = rng.normal(size=2000) * 10.0 ** rng.integers(-3, 4, 2000)
    b = rng.normal(size=2000) * 10.0 ** rng.integers(-3, 4, 2000)
    for backend in BACKENDS:
        floor = _compile(BUILD["floor"], "float64", backend)(a, b)
        rest = _compile(BUILD["remainder"], "float64", backend)(a, b)
        np.testing.assert_array_equal(floor, [x // y for x, y in zip(a, b)])
        np.testing.assert_array_equal(rest, [x % y for x, y in zip(a, b)])


def test_an_int_division_fused_into_kernels_of_other_dtypes_divides_as_its_own_type():
    """(a // b) * 0.5 and (a % b) + c64: one kernel computing in float64 or int64, the
    division still int32's (0 for b = 0, the minimum int over -1 wrapped)."""
    a, b = gc.input("a", (6,), "int32"), gc.input("b", (6,), "int32")
    c = gc.input("c", (6,), "int64")
    outs = [(a // b) * 0.5, (a % b) + c, gc.div(a, b, rounding_mode="trunc") < 0.5]
    av = np.array([7, -7, 5, np.iinfo(np.int32).min, 9, -9], np.int32)
    bv = np.array([2, 2, 0, -1, -4, 0], np.int32)
    cv = np.arange(6, dtype=np.int64) * (1 << 40)
    step = gc.compile([a, b, c], outs)
    assert step.to_dot().count("fused") >= 2
    for got, expected in zip(step(av, bv, cv),
                             gc.compile([a, b, c], outs, backend="numpy", optimize=False)(
                                 av, bv, cv)):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(step(av, bv, cv)[0], [1.5, -2.0, 0.0, -1073741824.0, -1.5, 0])


def test_gradients_follow_pytorch():
    """floor_divide and div with a rounding mode: 0; remainder: 1 and -(a // b)."""
    a, b = gc.input("a", (3,), "float64"), gc.input("b", (3,), "float64")
    av, bv = np.array([7.5, -7.5, 3.0]), np.array([2.0, 2.0, -4.0])
    grads = gc.grad(gc.sum(a // b + gc.div(a, b, rounding_mode="trunc")), [a, b])
    for g in gc.compile([a, b], grads)(av, bv):
        np.testing.assert_array_equal(g, 0.0)
    ga, gb = gc.compile([a, b], gc.grad(gc.sum(a % b), [a, b]))(av, bv)
    np.testing.assert_array_equal(ga, 1.0)
    np.testing.assert_array_equal(gb, -(av // bv))


def test_bad_arguments_name_the_op_and_the_line():
    a = gc.input("a", (3,), "int32")
    with pytest.raises(GraphError, match=r"div: rounding_mode must be .* got 'round' \(at .*"
                                         r"test_division.py:\d+\)"):
        gc.div(a, 2, rounding_mode="round")
    with pytest.raises(GraphTypeError, match="floor_divide: does not take bool inputs"):
        gc.input("m", (3,), "bool") // a
    u = gc.input("u", (3,), "uint8")
    with pytest.raises(GraphError, match=r"remainder: the Python integer 300 is out of bounds "
                                         r"for uint8 .*test_division.py"):
        u % 300
