"""Op-table rows for the elementwise math, activations, rounding divisions, bitwise ops,
small integer dtypes and creation ops (issue 16), each expectation computed element by
element with Python's math module and Python's own int and float operators (whose //, %,
round and shifts are the rules graphc follows), independently of graphc's references."""

from __future__ import annotations

import math

import numpy as np

import graphc as gc
from tests.ops.harness import Case, In, optimized


def each(fn, dtype=None):
    """fn of Python numbers applied element by element; the result as `dtype`, else as the
    first input's float dtype (float64 for ints)."""
    def apply(*arrays):
        out = np.empty(np.broadcast_shapes(*(a.shape for a in arrays)), dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = fn(*(a[tuple(i if s > 1 else 0 for i, s in
                                    zip(idx[len(idx) - a.ndim:], a.shape))].item()
                            for a in arrays))
        kind = dtype or (arrays[0].dtype if arrays[0].dtype.kind == "f" else np.float64)
        return out.astype(kind)
    return apply


def _sigmoid(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def _softplus(v, beta=1.0, threshold=20.0):
    return v if v * beta > threshold else math.log1p(math.exp(v * beta)) / beta


def _wrap(value: int, bits: int, unsigned: bool = False) -> int:
    """A Python int wrapped to an int of `bits` bits (two's complement), as C and NumPy."""
    value %= 1 << bits
    return value if unsigned or value < 1 << (bits - 1) else value - (1 << bits)


def _int_floor_divide(a, b):
    return a // b if b else 0


def _int_remainder(a, b):
    return a % b if b else 0


def _int_trunc_divide(a, b):
    return 0 if not b else abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)


def _shift_left(a, b, bits=64):
    return _wrap(a << b, bits) if 0 <= b < bits else 0


def _shift_right(a, b, bits=64):
    return a >> b if 0 <= b < bits else (-1 if a < 0 else 0)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
I32 = In((3, 4), "int32", "int:-9:9")
DIVISORS = In((4,), "int32", "int:-3:4")  # 0 among them: an integer division by 0 gives 0

ELEMENTWISE_CASES: list[Case] = [
    # ----- float functions -----
    Case("log1p", gc.log1p, (In((3, 4), kind="unit"),), each(math.log1p)),
    Case("expm1", gc.expm1, (In((3, 4)),), each(math.expm1)),
    Case("rsqrt", gc.rsqrt, (In((3, 4), kind="positive"),), each(lambda v: 1 / math.sqrt(v))),
    Case("reciprocal", gc.reciprocal, (In((3, 4), kind="positive"),), each(lambda v: 1 / v)),
    Case("reciprocal_of_int32", gc.reciprocal, (In((6,), "int32", "int:1:9"),),
         each(lambda v: 1 / v), grad=False),
    Case("square", gc.square, (In((3, 4)),), each(lambda v: v * v)),
    Case("square_int16", gc.square, (In((6,), "int16", "int:-200:200"),),
         each(lambda v: _wrap(v * v, 16), np.int16), grad=False),
    Case("tan", gc.tan, (In((3, 4), kind="unit"),), each(math.tan)),
    Case("sinh", gc.sinh, (In((3, 4)),), each(math.sinh)),
    Case("cosh", gc.cosh, (In((3, 4)),), each(math.cosh)),
    Case("asin", gc.asin, (In((3, 4), kind="unit"),), each(math.asin)),
    Case("acos", lambda a: gc.acos(-a), (In((3, 4), kind="unit"),), each(lambda v: math.acos(-v))),
    Case("atan", lambda a: gc.atan(a * 3.0), (In((3, 4)),), each(lambda v: math.atan(3 * v))),
    Case("atan2", gc.atan2, (In((3, 4)), In((4,))), each(math.atan2)),
    Case("copysign", gc.copysign, (In((3, 4)), In((3, 1))), each(math.copysign)),
    # ----- roundings: in the input's dtype, gradient 0 -----
    Case("floor", lambda a: gc.floor(a * 3.0), (In((3, 4)),), each(lambda v: math.floor(3 * v))),
    Case("ceil", lambda a: gc.ceil(a * 3.0), (In((3, 4)),), each(lambda v: math.ceil(3 * v))),
    Case("round", lambda a: gc.round(a * 3.0), (In((3, 4)),), each(lambda v: round(3 * v))),
    Case("round_decimals", lambda a: gc.round(a, 2), (In((3, 4)),),
         each(lambda v: round(v * 100) / 100)),
    Case("trunc", lambda a: gc.trunc(a * 3.0), (In((3, 4)),), each(lambda v: math.trunc(3 * v))),
    Case("floor_of_int8", gc.floor, (In((6,), "int8", "int:-128:127"),), each(int, np.int8),
         grad=False),
    # ----- tests and logic -----
    Case("isnan", lambda a: gc.isnan(gc.log(a)), (In((3, 4)),),
         each(lambda v: v < 0, np.bool_), grad=False),
    Case("isinf", lambda a: gc.isinf(1.0 / gc.relu(a)), (In((3, 4)),),
         each(lambda v: v <= 0, np.bool_), grad=False),
    Case("isfinite", lambda a: gc.isfinite(gc.log(a)), (In((3, 4)),),
         each(lambda v: v > 0, np.bool_), grad=False),
    Case("isnan_of_int32", gc.isnan, (I32,), each(lambda v: False, np.bool_), grad=False),
    Case("logical_xor", gc.logical_xor, (In((3, 4), "bool", "bool"), In((4,), "bool", "bool")),
         each(lambda a, b: a != b, np.bool_), grad=False),
    Case("isclose", lambda a, b: gc.isclose(gc.log(a), gc.log(b), rtol=0.5, equal_nan=True),
         (In((3, 4)), In((4,))),
         each(lambda a, b: (a < 0 and b < 0) or (a > 0 and b > 0 and abs(
             math.log(a) - math.log(b)) <= 1e-8 + 0.5 * abs(math.log(b))), np.bool_),
         grad=False),
    # ----- rounding divisions and remainders, Python's rules -----
    Case("floor_divide_int", lambda a, b: a // b, (I32, DIVISORS),
         each(_int_floor_divide, np.int32), grad=False),
    Case("remainder_int", lambda a, b: a % b, (I32, DIVISORS),
         each(_int_remainder, np.int32), grad=False),
    Case("div_trunc_int", lambda a, b: gc.div(a, b, rounding_mode="trunc"), (I32, DIVISORS),
         each(_int_trunc_divide, np.int32), grad=False),
    Case("mod_uint8_int8", gc.mod, (In((3, 4), "uint8", "int:0:256"),
                                    In((4,), "int8", "int:-5:5")),
         each(_int_remainder, np.int16), grad=False),
    Case("floor_divide_float", lambda a, b: a // b, (In((3, 4)), In((4,))),
         each(lambda a, b: a // b)),
    Case("remainder_float", lambda a, b: a % b, (In((3, 4)), In((4,))),
         each(lambda a, b: a % b)),
    Case("div_trunc_float", lambda a, b: gc.div(a, b, rounding_mode="trunc"),
         (In((3, 4)), In((4,))), each(lambda a, b: float(math.trunc(a / b)))),
    # an integer division fused into a float kernel still divides as ints (0 for b = 0)
    Case("floor_divide_int_in_float_kernel", lambda a, b: optimized((a // b) * 0.5),
         (I32, DIVISORS), each(lambda a, b: _int_floor_divide(a, b) * 0.5), grad=False),
    # ----- bitwise ops and shifts -----
    Case("bitwise_and", lambda a, b: a & b, (I32, DIVISORS), each(lambda a, b: a & b, np.int32),
         grad=False),
    Case("bitwise_or", lambda a, b: a | b, (I32, DIVISORS), each(lambda a, b: a | b, np.int32),
         grad=False),
    Case("bitwise_xor", lambda a, b: a ^ b, (I32, In((4,), "int64", "int:-9:9")),
         each(lambda a, b: a ^ b, np.int64), grad=False),
    Case("bitwise_not_uint8", lambda u: ~u, (In((6,), "uint8", "int:0:256"),),
         each(lambda v: 255 - v, np.uint8), grad=False),
    Case("left_shift", lambda a, b: a << b, (In((3, 4), "int64", "int:-9:9"),
                                             In((4,), "int64", "int:-2:70")),
         each(_shift_left, np.int64), grad=False),
    Case("right_shift", lambda a, b: a >> b, (In((3, 4), "int64", "int:-99:99"),
                                              In((4,), "int64", "int:-2:70")),
         each(_shift_right, np.int64), grad=False),
    Case("shifts_of_uint8_in_float_kernel", lambda u: optimized(((u << 3) >> 1) * 0.5),
         (In((6,), "uint8", "int:0:256"),), each(lambda v: (_wrap(v << 3, 8, True) >> 1) * 0.5),
         grad=False),
    # ----- activations (PyTorch's) -----
    Case("softplus", gc.softplus, (In((3, 4)),), each(_softplus)),
    Case("softplus_beta_threshold", lambda a: gc.softplus(a, beta=2.0, threshold=1.0),
         (In((3, 4)),), each(lambda v: _softplus(v, 2.0, 1.0))),
    Case("elu", lambda a: gc.elu(a, alpha=1.5), (In((3, 4)),),
         each(lambda v: v if v > 0 else 1.5 * math.expm1(v))),
    Case("selu", gc.selu, (In((3, 4)),),
         each(lambda v: SELU_SCALE * (v if v > 0 else SELU_ALPHA * math.expm1(v)))),
    Case("celu", lambda a: gc.celu(a, alpha=2.0), (In((3, 4)),),
         each(lambda v: v if v > 0 else 2.0 * math.expm1(v / 2.0))),
    Case("mish", gc.mish, (In((3, 4)),), each(lambda v: v * math.tanh(math.log1p(math.exp(v))))),
    Case("hardswish", lambda a: gc.hardswish(a * 4.0), (In((3, 4)),),
         each(lambda v: 4 * v * min(max(4 * v + 3, 0), 6) / 6)),
    Case("hardsigmoid", lambda a: gc.hardsigmoid(a * 4.0), (In((3, 4)),),
         each(lambda v: min(max(4 * v + 3, 0), 6) / 6)),
    Case("hardtanh", lambda a: gc.hardtanh(a, -0.5, 0.7), (In((3, 4)),),
         each(lambda v: min(max(v, -0.5), 0.7))),
    Case("relu6", lambda a: gc.relu6(a * 5.0), (In((3, 4)),),
         each(lambda v: min(max(5 * v, 0), 6))),
    Case("relu6_of_int32", gc.relu6, (I32,), each(lambda v: min(max(v, 0), 6), np.int32),
         grad=False),
    Case("log_sigmoid", lambda a: gc.log_sigmoid(a * 10.0), (In((3, 4)),),
         each(lambda v: math.log(_sigmoid(10 * v)))),
    Case("softsign", gc.softsign, (In((3, 4)),), each(lambda v: v / (1 + abs(v)))),
    # ----- small integer dtypes: NumPy's promotion, wrapping, unsigned order -----
    Case("add_uint8_int8", lambda u, i: u + i, (In((3, 4), "uint8", "int:0:256"),
                                                In((4,), "int8", "int:-128:128")),
         each(lambda u, i: u + i, np.int16), grad=False),
    Case("mul_uint8_wraps", lambda u: u * 3, (In((6,), "uint8", "int:0:256"),),
         each(lambda v: (3 * v) % 256, np.uint8), grad=False),
    Case("maximum_uint8", lambda u: gc.maximum(u, 200), (In((6,), "uint8", "int:0:256"),),
         each(lambda v: max(v, 200), np.uint8), grad=False),
    Case("argmax_uint8", lambda u: gc.argmax(u, axis=1), (In((3, 8), "uint8", "int:0:256"),),
         lambda u: np.array([list(r).index(max(r)) for r in u.tolist()]), grad=False),
    Case("uint8_image_to_float", lambda u: gc.cast(u, "float32") / 255.0,
         (In((2, 3), "uint8", "int:0:256"),), each(lambda v: v / 255, np.float32), grad=False,
         rtol64=1e-6),
    # ----- creation ops -----
    Case("arange_symbolic", lambda a: a * gc.arange(a.shape[0], dtype=a.dtype), (In(("N",)),),
         lambda a: np.array([v * k for k, v in enumerate(a)]), bindings={"N": 5}),
    Case("tril", lambda a: gc.tril(a, -1), (In((2, 3, 4)),),
         lambda a: np.array([[[a[n, i, j] if j - i <= -1 else 0.0 for j in range(4)]
                              for i in range(3)] for n in range(2)])),
    Case("triu_symbolic", lambda a: gc.triu(a, 1), (In((2, "T", "T")),),
         lambda a: np.array([[[a[n, i, j] if j - i >= 1 else 0.0 for j in range(4)]
                              for i in range(4)] for n in range(2)]), bindings={"T": 4}),
    Case("full_like_symbolic", lambda a: a * gc.full_like(a, 3.0) + gc.ones_like(a),
         (In(("N", 3)),), lambda a: a * 3 + 1, bindings={"N": 2}),
    Case("eye_linspace_arange",
         lambda a: a * gc.eye(3, 4, dtype=a.dtype) + gc.linspace(0, 1, 4, dtype=a.dtype)
         + gc.arange(4, dtype=a.dtype),
         (In((3, 4)),),
         lambda a: np.array([[a[i, j] * (i == j) + j / 3 + j for j in range(4)]
                             for i in range(3)])),
]
