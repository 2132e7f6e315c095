"""The op table: one row per op (or op variant), each with an expected value computed
independently of graphc (Python's math module element by element, or a different NumPy
formulation). Tests for the reference, the gradients and every backend are generated from
this one table, and a test asserts every registered op appears in it."""

from __future__ import annotations

import importlib
import math
import pkgutil
from pathlib import Path

import numpy as np

import graphc as gc
from tests.ops.harness import Case, In, optimized, optimized_outputs


def per_element(fn):
    """Apply a Python scalar function element by element (the independent reference)."""
    def apply(*arrays):
        out = np.vectorize(fn, otypes=[np.float64])(*arrays)
        return out.astype(np.result_type(*arrays)) if arrays[0].dtype.kind == "f" else out
    return apply


def _gelu(x):
    return 0.5 * x * (1 + math.erf(x / math.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _softmax(x, axis=-1):
    out = np.empty_like(x)
    moved = np.moveaxis(x, axis, -1)
    res = np.moveaxis(out, axis, -1)
    for idx in np.ndindex(moved.shape[:-1]):
        row = [math.exp(v - max(moved[idx])) for v in moved[idx]]
        res[idx] = [v / sum(row) for v in row]
    return out


def _log_softmax(x, axis=-1):
    return np.log(_softmax(x, axis))


def _cross_entropy(logits, labels):
    total = 0.0
    for row, label in zip(logits, labels):
        total += math.log(sum(math.exp(v) for v in row)) - row[label]
    return np.asarray(total / len(labels), logits.dtype)


def _layer_norm(x, w, b, eps=1e-5):
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        row = x[idx].astype(np.float64)
        mu = sum(row) / len(row)
        var = sum((v - mu) ** 2 for v in row) / len(row)
        out[idx] = (row - mu) / math.sqrt(var + eps) * w + b
    return out


def _matmul(a, b):
    """Batched matmul by explicit sums over the contraction axis."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    out = np.zeros(batch + (a.shape[-2], b.shape[-1]), np.result_type(a, b))
    for k in range(a.shape[-1]):
        out += a[..., :, k:k + 1] * b[..., k:k + 1, :]
    return out


F = "float64"
CASES: list[Case] = [
    # ----- arithmetic, with broadcasting -----
    Case("add", lambda a, b: a + b, (In((3, 4)), In((4,))), lambda a, b: a + b),
    Case("add_scalar_reflected", lambda a: 2.0 + a, (In((5,)),), lambda a: a + 2),
    Case("sub", lambda a, b: a - b, (In((2, 1, 3)), In((4, 1))), lambda a, b: a - b),
    Case("sub_reflected", lambda a: 1.5 - a, (In((3,)),), lambda a: 1.5 - a),
    Case("mul", lambda a, b: a * b, (In((3, 4)), In((3, 1))), lambda a, b: a * b),
    Case("div", lambda a, b: a / b, (In((3, 4)), In((4,), kind="positive")),
         lambda a, b: a * (1 / b)),
    Case("div_reflected", lambda a: 1.0 / a, (In((4,), kind="positive"),), lambda a: a ** -1),
    Case("pow_scalar", lambda a: a ** 3, (In((3, 3)),), lambda a: a * a * a),
    Case("pow_tensor", lambda a, b: a ** b, (In((3,), kind="positive"), In((3,))),
         per_element(lambda a, b: math.pow(a, b))),
    Case("pow_int", lambda a, b: a ** b, (In((6,), "int32", "int:-4:5"),
                                          In((6,), "int64", "int:0:6")),
         per_element(lambda a, b: int(a) ** int(b)), grad=False),  # b: a nonnegative_check
    Case("neg", lambda a: -a, (In((2, 3)),), lambda a: 0 - a),
    Case("abs", lambda a: gc.abs(a), (In((7,)),), per_element(abs)),
    Case("sign", lambda a: gc.sign(a), (In((7,)),),
         per_element(lambda v: (v > 0) - (v < 0))),
    Case("maximum", gc.maximum, (In((3, 4)), In((4,))), per_element(max)),
    Case("minimum", gc.minimum, (In((3, 4)), In((3, 1))), per_element(min)),
    Case("relu", gc.relu, (In((4, 5)),), per_element(lambda v: v if v > 0 else 0.0)),
    Case("leaky_relu", lambda a: gc.leaky_relu(a, 0.1), (In((4, 5)),),
         per_element(lambda v: v if v > 0 else 0.1 * v)),
    Case("clip", lambda a: gc.clip(a, -0.5, 0.7), (In((20,)),),
         per_element(lambda v: min(max(v, -0.5), 0.7))),
    # ----- float functions -----
    Case("exp", gc.exp, (In((3, 4)),), per_element(math.exp)),
    Case("log", gc.log, (In((3, 4), kind="positive"),), per_element(math.log)),
    Case("sqrt", gc.sqrt, (In((3, 4), kind="positive"),), per_element(math.sqrt)),
    Case("sin", gc.sin, (In((5,)),), per_element(math.sin)),
    Case("cos", gc.cos, (In((5,)),), per_element(math.cos)),
    Case("tanh", gc.tanh, (In((3, 4)),), per_element(math.tanh)),
    Case("erf", gc.erf, (In((3, 4)),), per_element(math.erf)),
    Case("sigmoid", gc.sigmoid, (In((3, 4)),), per_element(_sigmoid)),
    Case("silu", gc.silu, (In((3, 4)),), per_element(lambda v: v * _sigmoid(v))),
    Case("gelu", gc.gelu, (In((3, 4)),), per_element(_gelu)),
    Case("gelu_tanh", lambda a: gc.gelu(a, approximate="tanh"), (In((3, 4)),),
         per_element(_gelu_tanh)),
    # float functions of ints compute in float64 (the reference once cast results back to
    # the int dtype: sigmoid, erf and gelu of ints were 0; found by the fuzzer's int programs)
    *[Case(f"{name}_of_int32", fn, (In((8,), "int32", "int:-5:5"),), per_element(scalar),
           grad=False)
      for name, fn, scalar in [("erf", gc.erf, math.erf), ("sigmoid", gc.sigmoid, _sigmoid),
                               ("gelu", gc.gelu, _gelu), ("tanh", gc.tanh, math.tanh),
                               ("gelu_tanh", lambda a: gc.gelu(a, approximate="tanh"),
                                _gelu_tanh)]],
    # ----- comparisons, selection, casts (no gradient) -----
    Case("equal", gc.equal, (In((6,), "int64", "int:0:3"), In((6,), "int64", "int:0:3")),
         lambda a, b: np.array([x == y for x, y in zip(a, b)]), grad=False),
    Case("not_equal", gc.not_equal, (In((6,), "int32", "int:0:3"), In((), "int32", "int:0:3")),
         lambda a, b: np.array([x != b for x in a]), grad=False),
    Case("less", lambda a, b: a < b, (In((3, 4)), In((4,))),
         lambda a, b: np.array([[x < y for x, y in zip(r, b)] for r in a]), grad=False),
    Case("less_equal", lambda a, b: a <= b, (In((5,), "int64", "int:0:3"), In((5,), "int64",
         "int:0:3")), lambda a, b: np.array([x <= y for x, y in zip(a, b)]), grad=False),
    Case("greater", lambda a, b: a > b, (In((5,)), In((5,))),
         lambda a, b: np.array([x > y for x, y in zip(a, b)]), grad=False),
    Case("greater_equal", lambda a: a >= 0.0, (In((5,)),),
         lambda a: np.array([x >= 0 for x in a]), grad=False),
    Case("where", lambda c, a, b: gc.where(c, a, b), (In((3, 4), "bool", "bool"), In((3, 4)),
         In((4,))), lambda c, a, b: np.array([[x if k else y for k, x, y in zip(cr, ar, b)]
                                             for cr, ar in zip(c, a)])),
    Case("cast_float_to_int", lambda a: gc.cast(a * 3.0, "int32"), (In((6,)),),
         lambda a: np.array([int(v * 3) for v in a], np.int32), grad=False),
    Case("cast_int_to_float", lambda a: gc.cast(a, "float64") * 0.5,
         (In((4,), "int64", "int:-5:5"),), lambda a: np.array([v / 2 for v in a]),
         grad=False),
    Case("stop_gradient", lambda a: gc.stop_gradient(a) * a, (In((4,)),), lambda a: a * a,
         grad_expected=lambda a, w: [a * w]),
    # ----- reductions -----
    Case("sum_all", lambda a: gc.sum(a), (In((3, 4)),),
         lambda a: np.asarray(math.fsum(a.ravel()))),
    Case("sum_axis_keepdims", lambda a: gc.sum(a, axis=1, keepdims=True), (In((3, 4, 2)),),
         lambda a: a[:, 0:1] + a[:, 1:2] + a[:, 2:3] + a[:, 3:4]),
    Case("sum_tuple_axes", lambda a: a.sum(axis=(0, 2)), (In((3, 4, 2)),),
         lambda a: np.array([math.fsum(a[:, j, :].ravel()) for j in range(4)])),
    Case("sum_int", lambda a: gc.sum(a, 0), (In((4, 3), "int32", "int:-9:9"),),
         lambda a: np.array([sum(int(v) for v in a[:, j]) for j in range(3)], np.int64),
         grad=False),
    Case("mean", lambda a: gc.mean(a, axis=-1), (In((3, 5)),),
         lambda a: np.array([math.fsum(r) / 5 for r in a])),
    Case("mean_int", lambda a: a.mean(), (In((4,), "int32", "int:0:9"),),
         lambda a: np.asarray(sum(int(v) for v in a) / 4), grad=False),
    Case("max", lambda a: gc.max(a, axis=0), (In((4, 3), kind="distinct"),),
         lambda a: np.array([max(a[:, j]) for j in range(3)])),
    Case("max_ties", lambda a: gc.max(gc.relu(a) * 0.0 + 1.0, axis=1) * a.sum(),
         (In((2, 3)),), lambda a: np.full(2, a.sum())),
    Case("min", lambda a: a.min(axis=1, keepdims=True), (In((3, 4), kind="distinct"),),
         lambda a: np.array([[min(r)] for r in a])),
    Case("argmax", lambda a: gc.argmax(a, axis=1), (In((3, 5), kind="distinct"),),
         lambda a: np.array([list(r).index(max(r)) for r in a]), grad=False),
    Case("argmax_flat", lambda a: a.argmax(), (In((3, 5), kind="distinct"),),
         lambda a: np.asarray(list(a.ravel()).index(max(a.ravel()))), grad=False),
    # ----- matmul -----
    Case("matmul_2d", gc.matmul, (In((3, 4)), In((4, 2))), _matmul),
    Case("matmul_batched_broadcast", lambda a, b: a @ b, (In((2, 1, 3, 4)), In((3, 4, 2))),
         _matmul),
    Case("matmul_batched_shared_weight", lambda a, w: a @ w, (In((2, 3, 4)), In((4, 5))),
         _matmul),
    Case("matmul_vector", lambda a, b: a @ b, (In((3, 4)), In((4,))),
         lambda a, b: _matmul(a, b[:, None])[:, 0]),
    Case("matmul_reflected_constant", lambda a: np.eye(3, dtype=np.float32) @ a, (In((3, 2)),),
         lambda a: a),
    # ----- shapes -----
    Case("reshape", lambda a: a.reshape(2, -1), (In((3, 4)),),
         lambda a: np.array(list(a.ravel())).reshape(2, 6)),
    Case("transpose", lambda a: a.transpose(2, 0, 1), (In((2, 3, 4)),),
         lambda a: np.array([[[a[i, j, k] for j in range(3)] for i in range(2)]
                             for k in range(4)])),
    Case("T", lambda a: a.T, (In((2, 3)),), lambda a: np.array([list(c) for c in zip(*a)])),
    Case("broadcast_to", lambda a: gc.broadcast_to(a, (2, 3, 4)), (In((3, 1)),),
         lambda a: np.array([[[a[i, 0]] * 4 for i in range(3)]] * 2)),
    Case("concat", lambda a, b: gc.concat([a, b], axis=1), (In((2, 3)), In((2, 2))),
         lambda a, b: np.array([list(x) + list(y) for x, y in zip(a, b)])),
    Case("slice_basic", lambda a: a[1:, ::2], (In((4, 5)),), lambda a: a[[1, 2, 3]][:, [0, 2, 4]]),
    Case("slice_negative_step", lambda a: a[::-1, -1], (In((4, 5)),),
         lambda a: np.array([a[i, 4] for i in (3, 2, 1, 0)])),
    Case("slice_ellipsis_newaxis", lambda a: a[..., 1, None], (In((2, 3, 4)),),
         lambda a: np.array([[[a[i, j, 1]] for j in range(3)] for i in range(2)])),
    Case("expand_squeeze", lambda a: gc.squeeze(gc.expand_dims(a, 0) * 2.0), (In((3,)),),
         lambda a: 2 * a),
    # ----- nn functions -----
    Case("softmax", gc.softmax, (In((3, 5)),), _softmax),
    Case("softmax_axis0", lambda a: gc.softmax(a, axis=0), (In((3, 5)),),
         lambda a: _softmax(a, 0)),
    Case("log_softmax", gc.log_softmax, (In((3, 5)),), _log_softmax),
    Case("softmax_cross_entropy", gc.softmax_cross_entropy,
         (In((4, 5)), In((4,), "int32", "int:0:5")), _cross_entropy),
    Case("mse_loss", gc.mse_loss, (In((3, 4)), In((3, 4))),
         lambda a, b: np.asarray(math.fsum(((a - b) ** 2).ravel()) / 12)),
    Case("binary_cross_entropy_with_logits", gc.binary_cross_entropy_with_logits,
         (In((6,)), In((6,), kind="unit")),
         lambda x, t: np.asarray(-sum(tt * math.log(_sigmoid(v)) + (1 - tt)
                                      * math.log(1 - _sigmoid(v)) for v, tt in zip(x, t)) / 6)),
    Case("layer_norm", gc.layer_norm, (In((3, 6)), In((6,)), In((6,))), _layer_norm),
    Case("one_hot", lambda a: gc.one_hot(a, 4), (In((5,), "int32", "int:0:4"),),
         lambda a: np.array([[1.0 if int(v) == k else 0.0 for k in range(4)] for v in a],
                            np.float32), grad=False),
    Case("one_hot_ignore_index", lambda a: gc.one_hot(a, 4, ignore_index=1),
         (In((6,), "int32", "int:0:4"),),
         lambda a: np.array([[1.0 if int(v) == k != 1 else 0.0 for k in range(4)] for v in a],
                            np.float32), grad=False),
    Case("embedding", lambda ids, table: gc.embedding(ids, table),
         (In((2, 3), "int64", "int:0:5"), In((5, 4))),
         lambda ids, t: np.array([[t[i] for i in row] for row in ids])),
    # ----- symbolic dims -----
    Case("symbolic_batch_mean", lambda a: gc.mean(a, axis=0) * 2.0, (In(("N", 3)),),
         lambda a: 2 * a.sum(0) / a.shape[0], bindings={"N": 5}),
    Case("symbolic_reshape_flatten", lambda a: a.reshape(a.shape[0], -1).sum(axis=1),
         (In(("N", 2, 3)),), lambda a: np.array([math.fsum(r.ravel()) for r in a]),
         bindings={"N": 4}),
]
CASES += [
    Case("logical_and_or_not", lambda a, b: gc.logical_or(gc.logical_and(a, b), gc.logical_not(b)),
         (In((6,), "bool", "bool"), In((6,), "bool", "bool")),
         lambda a, b: np.array([(x and y) or not y for x, y in zip(a, b)]), grad=False),
]

_M64 = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    """SplitMix64 written with Python ints: the independent check of the counter-based RNG."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def uniform_stream(seed: int, step: int, count: int) -> np.ndarray:
    key = _splitmix64(_splitmix64(seed) ^ step)
    return np.array([(_splitmix64((key + i) & _M64) >> 40) / 2 ** 24 for i in range(count)])


def _dropout_expected(x, rate=0.3, seed=7):
    keep = uniform_stream(seed, 0, x.size).reshape(x.shape) >= rate
    return np.where(keep, x / (1 - rate), 0.0)


CASES += [
    Case("random_uniform", lambda a: gc.random_uniform((3, 4), seed=11) + a * 0.0,
         (In((3, 4)),), lambda a: uniform_stream(11, 0, 12).reshape(3, 4), grad=False),
    Case("dropout", lambda a: gc.dropout(a, 0.3, seed=7), (In((4, 6)),), _dropout_expected,
         grad_expected=lambda a, w: [np.where(_dropout_expected(np.ones_like(a)) > 0,
                                              w / 0.7, 0.0)]),
    Case("param", lambda a: a * gc.param("p", np.arange(3, dtype=np.float32)), (In((3,)),),
         lambda a: a * np.array([0.0, 1.0, 2.0])),
]


def _grouped(index):
    """Output `index` of a program whose second output (a kernel) reads its first (a kernel
    too, kept because it is an output): group fusion makes both one fused_group, and each
    output is a group_output of it."""
    def build(a, b, c):
        s = a * b + c
        return optimized_outputs(s, gc.relu(s) * a)[index]
    return build


def _conv_relu(x, k, b):
    out = np.zeros((x.shape[0], k.shape[0], x.shape[2], x.shape[3]))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for n, o, i, j in np.ndindex(out.shape):
        out[n, o, i, j] = math.fsum((padded[n, :, i:i + 3, j:j + 3] * k[o]).ravel()) + b[o]
    return np.maximum(out, 0)


CASES += [
    Case("fused", lambda a, b, c: optimized(gc.relu(a * b + c) * gc.sigmoid(a)),
         (In((3, 4)), In((4,)), In((3, 1))),
         per_element(lambda a, b, c: max(a * b + c, 0.0) * _sigmoid(a))),
    # No gradient rows: the optimizer builds groups after gc.grad, they have no grad rule.
    Case("fused_group", _grouped(1), (In((3, 4)), In((4,)), In((3, 1))),
         per_element(lambda a, b, c: max(a * b + c, 0.0) * a), grad=False),
    Case("group_output", _grouped(0), (In((3, 4)), In((4,)), In((3, 1))),
         per_element(lambda a, b, c: a * b + c), grad=False),
    Case("fused_reduce", lambda a, b: optimized(gc.sum(gc.exp(a) * b, axis=1)),
         (In((3, 4)), In((4,))),
         lambda a, b: np.array([math.fsum(math.exp(v) * w for v, w in zip(r, b)) for r in a])),
    Case("fused_matmul", lambda a, w, bias: optimized(gc.relu(a @ w + bias)),
         (In((3, 4)), In((4, 5)), In((5,))), lambda a, w, bias: np.maximum(_matmul(a, w) + bias,
                                                                            0)),
    Case("fused_conv2d", lambda x, k, b: optimized(gc.relu(gc.conv2d(x, k, b, padding=1))),
         (In((2, 2, 4, 4)), In((3, 2, 3, 3)), In((3,))), _conv_relu),
]


def _family_rows() -> list[Case]:
    """The rows of every family module tests/ops/cases_<family>.py: its lists named
    *_CASES, so a new family's file cannot be left out of the table."""
    rows: list[Case] = []
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if info.name.startswith("cases_"):
            module = importlib.import_module(f"tests.ops.{info.name}")
            for name in sorted(vars(module)):
                if name.endswith("_CASES"):
                    rows += getattr(module, name)
    return rows


CASES += _family_rows()
