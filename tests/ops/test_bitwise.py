"""Bitwise ops and shifts (graphc/ops/bitwise.py) and the operators & | ^ ~ << >>: every
pair of int8 and uint8 values (shift counts from -10 to 20), the wide ints' extremes, bools
as logical ops, and fused into float kernels, on both backends, against Python's ints."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.errors import GraphTypeError

BACKENDS = ["numpy", "llvm"]


def _wrap(value: int, dtype) -> int:
    info = np.iinfo(dtype)
    return (value - info.min) % (info.max - info.min + 1) + info.min


def _shift(a: int, b: int, dtype, left: bool) -> int:
    bits = np.iinfo(dtype).bits
    if not 0 <= b < bits:
        return 0 if left or a >= 0 else -1
    return _wrap(a << b, dtype) if left else a >> b


OPS = {"and": (lambda a, b: a & b, lambda a, b, d: a & b),
       "or": (lambda a, b: a | b, lambda a, b, d: a | b),
       "xor": (lambda a, b: a ^ b, lambda a, b, d: _wrap(a ^ b, d)),
       "left": (lambda a, b: a << b, lambda a, b, d: _shift(a, b, d, True)),
       "right": (lambda a, b: a >> b, lambda a, b, d: _shift(a, b, d, False))}


def _pairs(dtype, counts: bool):
    info = np.iinfo(dtype)
    first = np.arange(info.min, info.max + 1)
    second = np.arange(max(info.min, -10), 21) if counts else first
    return (v.ravel().astype(dtype) for v in np.meshgrid(first, second, indexing="ij"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("op", sorted(OPS))
def test_every_byte(op, dtype, backend):
    build, python = OPS[op]
    a, b = _pairs(dtype, counts=op in ("left", "right"))
    x, y = gc.input("x", a.shape, dtype), gc.input("y", b.shape, dtype)
    got = gc.compile([x, y], build(x, y), backend=backend)(a, b)
    expected = [python(p, q, dtype) for p, q in zip(a.tolist(), b.tolist())]
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, np.array(expected, dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "int64"])
def test_not_and_wide_extremes(dtype, backend):
    info = np.iinfo(dtype)
    a = np.array([info.min, info.min + 1, -1 if info.min else 1, 0, 5, info.max], dtype)
    counts = np.array([0, 1, info.bits - 1, info.bits, -1 if info.min else 200, 3], dtype)
    x, y = gc.input("x", a.shape, dtype), gc.input("y", a.shape, dtype)
    got = gc.compile([x, y], [~x, x << y, x >> y, x & y, x | y, x ^ y], backend=backend)(a, counts)
    pairs = list(zip(a.tolist(), counts.tolist()))
    expected = [[_wrap(~p, dtype) for p in a.tolist()],
                [_shift(p, q, dtype, True) for p, q in pairs],
                [_shift(p, q, dtype, False) for p, q in pairs],
                [p & q for p, q in pairs], [p | q for p, q in pairs],
                [_wrap(p ^ q, dtype) for p, q in pairs]]
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, np.array(e, dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_bools_are_logical_and_mix_with_ints_as_0_and_1(backend):
    p, q = gc.input("p", (4,), "bool"), gc.input("q", (4,), "bool")
    n = gc.input("n", (4,), "int16")
    outs = [p & q, p | q, p ^ q, ~p, p & n, n | q, True ^ p]
    assert [o.op for o in outs[:4]] == ["logical_and", "logical_or", "logical_xor",
                                        "logical_not"]
    pv, qv = np.array([True, True, False, False]), np.array([True, False, True, False])
    nv = np.array([3, 2, -1, 0], np.int16)
    got = gc.compile([p, q, n], outs, backend=backend)(pv, qv, nv)
    expected = [pv & qv, pv | qv, pv ^ qv, ~pv, pv & nv, nv | qv, True ^ pv]
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype
        np.testing.assert_array_equal(g, e)


def test_shifts_and_masks_of_an_image_in_one_float_kernel():
    """(img >> 4) & 0xF, scaled to floats: the bitwise ops computed as uint8 inside a
    float32 kernel (a typed function), as the unfused ops compute them."""
    img = gc.input("img", (2, 8), "uint8")
    out = gc.cast(((img << 3) >> 4) & 0x7, "float32") * 0.5 + gc.cast(~img, "float32")
    value = np.random.default_rng(0).integers(0, 256, (2, 8)).astype(np.uint8)
    fused = gc.compile([img], ((img << 3) >> 4) * 0.5)
    assert "fused" in fused.to_dot()
    np.testing.assert_array_equal(fused(value), (((value << 3) & 0xFF) >> 4) * 0.5)
    expected = ((((value << 3) & 0xFF) >> 4) & 7).astype(np.float32) * 0.5 \
        + (255 - value).astype(np.float32)
    np.testing.assert_array_equal(gc.compile([img], out)(value), expected)


def test_floats_and_bool_shifts_are_refused_with_the_op_and_line():
    x = gc.input("x", (3,), "float32")
    n = gc.input("n", (3,), "int32")
    b = gc.input("b", (3,), "bool")
    with pytest.raises(GraphTypeError, match=r"bitwise_and: takes int or bool inputs, got "
                                             r"float32, int32 \(at .*test_bitwise.py:\d+\)"):
        x & n
    with pytest.raises(GraphTypeError, match="bitwise_not: takes int or bool inputs"):
        _ = ~x
    with pytest.raises(GraphTypeError, match="left_shift: takes int inputs, got bool, int32"):
        b << n
