"""The DSL: operators, NumPy dtype rules with weak Python scalars, methods, and the
build-time errors (each naming the op, the shapes or dtypes, and the user's line)."""

import warnings

import numpy as np
import pytest

import graphc as gc

HERE = "test_dsl.py"


def run(inputs, out, *args):
    return gc.compile(inputs, out, backend="numpy")(*args)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_python_scalars_are_weak(dtype):
    x = gc.input("x", (2,), dtype)
    for y in (x * 2.0, 2.0 - x, x / 3, x ** 2, 1 + x, gc.maximum(x, 0.5), gc.where(x > 0, x, 0)):
        assert y.dtype == np.dtype(dtype)


@pytest.mark.parametrize("scalar", [np.float64(0.125), 1 / np.sqrt(64), np.array(0.125),
                                    np.float32(0.125), np.int64(3), np.bool_(True)],
                         ids=["float64", "1/sqrt(64)", "0-d array", "float32", "int64", "bool"])
def test_numpy_0d_values_are_weak_like_python_scalars(scalar, recwarn):
    """As in PyTorch: `x * (1 / np.sqrt(64))` keeps a float32 model float32."""
    x = gc.input("x", (2,), "float32")
    i = gc.input("i", (2,), "int32")
    for y in (x * scalar, scalar - x, gc.maximum(x, scalar), gc.where(x > scalar, x, scalar)):
        assert y.dtype == np.float32
    assert (i * scalar).dtype == (i * as_python(scalar)).dtype
    a = np.array([1.0, 8.0], np.float32)
    np.testing.assert_array_equal(run([x], x * scalar, a), a * np.float32(as_python(scalar)))
    assert gc.clip(x, scalar, 10).dtype == np.float32
    assert not [w for w in recwarn if issubclass(w.category, gc.PromotionWarning)]


def as_python(scalar):
    return np.asarray(scalar).item()


def test_numpy_arrays_are_strong_and_a_float64_one_warns_once_per_line():
    x = gc.input("x", (2,), "float32")
    assert (x + np.ones(2, np.float32)).dtype == np.float32
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):  # two lines, built three times: two warnings
            y = x + np.ones(2)
            z = x * gc.constant(np.ones((1, 2)))
    assert (y.dtype, z.dtype) == (np.float64, np.float64)
    first, second = (w for w in caught if issubclass(w.category, gc.PromotionWarning))
    assert "a float64 constant of shape (2,) promotes a float32 value to float64" in \
        str(first.message)
    assert "np.asarray(a, np.float32)" in str(first.message)
    assert "of shape (1, 2)" in str(second.message)
    assert first.filename == second.filename == __file__  # the user's line, not graphc's
    assert second.lineno == first.lineno + 1


def test_no_promotion_warning_for_float64_graphs_or_float32_constants(recwarn):
    f64 = gc.input("d", (2,), "float64")
    f32 = gc.input("s", (2,), "float32")
    y = f64 + np.ones(2)
    z = f32 + np.ones(2, np.float32)
    w = gc.cast(f32, "float64") * np.arange(2.0)  # cast first: float64 is meant
    assert (y.dtype, z.dtype, w.dtype) == (np.float64, np.float32, np.float64)
    assert not [w for w in recwarn if issubclass(w.category, gc.PromotionWarning)]


def test_int_promotion_follows_numpy():
    i32 = gc.input("i", (2,), "int32")
    i64 = gc.input("j", (2,), "int64")
    assert (i32 + i64).dtype == np.int64
    assert (i32 * 2).dtype == np.int32
    assert (i32 * 2.5).dtype == np.float64
    assert (i32 / i32).dtype == np.float64
    assert gc.exp(i32).dtype == np.float64
    assert (i32 + gc.input("f", (2,), "float32")).dtype == np.float64
    assert gc.sum(i32).dtype == np.int64 and gc.mean(i32).dtype == np.float64
    assert gc.max(i32).dtype == np.int32 and gc.argmax(i32).dtype == np.int64
    assert (i32 < 1).dtype == np.bool_


def test_reflected_operators_compute_like_numpy():
    x = gc.input("x", (3,))
    a = np.array([1.0, 2.0, 4.0], np.float32)
    out = run([x], [2.0 - x, 8.0 / x, 2.0 ** x, 3.0 * x, 1.0 + x, -x, abs(-x)], a)
    for got, want in zip(out, [2 - a, 8 / a, 2 ** a, 3 * a, 1 + a, -a, a]):
        np.testing.assert_array_equal(got, want)


def test_numpy_array_on_the_left_defers_to_the_graph():
    x = gc.input("x", (2,), "float64")
    y = np.array([1.0, 2.0]) * x
    assert isinstance(y, gc.Node)
    np.testing.assert_array_equal(run([x], y, np.array([3.0, 4.0])), [3.0, 8.0])


def test_value_methods():
    x = gc.input("x", (2, 3), "float64")
    a = np.arange(6.0).reshape(2, 3)
    outs = run([x], [x.sum(), x.mean(axis=0), x.max(axis=1, keepdims=True), x.argmax(axis=1),
                     x.reshape(3, 2), x.reshape((6,)), x.transpose(), x.transpose(1, 0), x.T,
                     x.min(), x.astype("int32")], a)
    wants = [a.sum(), a.mean(0), a.max(1, keepdims=True), a.argmax(1), a.reshape(3, 2),
             a.ravel(), a.T, a.T, a.T, a.min(), a.astype(np.int32)]
    for got, want in zip(outs, wants):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.asarray(want).dtype


def test_division_by_zero_and_log_of_zero_follow_ieee():
    x = gc.input("x", (3,), "float64")
    a = np.array([0.0, 1.0, -1.0])
    quotient, logs, roots = run([x], [1.0 / x, gc.log(x), gc.sqrt(x)], a)
    assert quotient[0] == np.inf and logs[0] == -np.inf and np.isnan(logs[2])
    assert np.isnan(roots[2])


def test_stable_forms_do_not_overflow():
    x = gc.input("x", (4,), "float32")
    a = np.array([-1e3, -50.0, 50.0, 1e3], np.float32)
    s, sm, lsm = run([x], [gc.sigmoid(x), gc.softmax(x), gc.log_softmax(x)], a)
    assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[-1] == 1.0
    assert np.all(np.isfinite(sm)) and np.all(np.isfinite(lsm))
    y = gc.input("y", (1,), "int32")
    logits = gc.input("l", (1, 3), "float32")
    ce = run([logits, y], gc.softmax_cross_entropy(logits, y),
             np.array([[1e4, -1e4, 0.0]], np.float32), np.array([1], np.int32))
    assert np.isfinite(ce) and ce == pytest.approx(2e4)


# ----- build-time errors ----------------------------------------------------------------
def test_shape_mismatch_names_op_shapes_and_line():
    x = gc.input("x", ("N", 3))
    with pytest.raises(gc.GraphError, match=rf"add: shapes \(N, 3\), \(4,\) do not broadcast "
                                            rf"\(at .*{HERE}:\d+\)"):
        x + gc.input("y", (4,))


def test_dtype_mismatch_is_a_type_error_naming_dtypes():
    b = gc.input("b", (3,), "bool")
    with pytest.raises(gc.GraphTypeError, match=rf"mul: does not take bool inputs \(got bool, "
                                                rf"float32\).*{HERE}"):
        b * gc.input("x", (3,))
    with pytest.raises(gc.GraphTypeError, match="where: condition must be bool, got float32"):
        gc.where(gc.input("c", (3,)), 1.0, 2.0)
    with pytest.raises(gc.GraphTypeError, match="embedding|take: ids must be int32 or int64"):
        gc.embedding(gc.input("i", (2,)), gc.input("t", (5, 3)))


@pytest.mark.parametrize("build, message", [
    (lambda x: x.sum(axis=2), r"sum: axis 2 is out of range for rank 2 \(input shape \(N, 3\)\)"),
    (lambda x: x.mean(axis=(0, 0)), r"mean: repeated axis"),
    (lambda x: gc.argmax(x, axis=(0, 1)), r"argmax: takes one axis or None"),
    (lambda x: x.transpose(0, 0), r"transpose: axes \(0, 0\) are not a permutation"),
    (lambda x: x.reshape(4, -1, -1), r"reshape: can only infer one dim"),
    (lambda x: gc.concat([x, gc.input("z", ("N", 4))], axis=0), r"concat: shapes .* differ"),
    (lambda x: gc.broadcast_to(x, (2, 3)), r"broadcast_to: cannot broadcast \(N, 3\) to \(2, 3\)"),
    (lambda x: x @ gc.input("w", (4, 2)), r"matmul: inner dims differ: \(N, 3\) @ \(4, 2\)"),
    (lambda x: gc.matmul(x, gc.input("v", (4,))), r"matmul: inner dims differ: \(N, 3\) @ \(4,\)"),
    (lambda x: gc.clip(x, 1.0, -1.0), r"clip: lo 1.0 is greater than hi -1.0"),
    (lambda x: gc.gelu(x, approximate="fast"), r"gelu: approximate must be 'none' or 'tanh'"),
    (lambda x: gc.dropout(x, 1.5), r"dropout: rate must be in \[0, 1\], got 1.5"),
    (lambda x: gc.layer_norm(x, eps=0.0), r"layer_norm: eps must be positive"),
    (lambda x: gc.layer_norm(x, gc.input("g", (4,))), r"layer_norm: weight of shape \(4,\)"),
    (lambda x: gc.softmax_cross_entropy(x, gc.input("l", ("N", 2), "int32")),
     r"softmax_cross_entropy: labels of shape \(N, 2\) do not match logits of shape \(N, 3\)"),
    (lambda x: gc.one_hot(gc.input("l", (3,), "int32"), 0), r"one_hot: n must be positive"),
    (lambda x: x[:, :, :], r"getitem: too many indices \(3\) for shape \(N, 3\)"),
    (lambda x: x[..., ...], r"getitem: an index can only have a single ellipsis"),
    (lambda x: x[:, ::0], r"slice: slice step cannot be zero"),
    (lambda x: x[[0.5, 1]], r"getitem: only ints, slices, \.\.\., None, int arrays and boolean"),
    (lambda x: gc.random_uniform((2,), seed=-1), r"random_uniform: seed must be a nonnegative"),
])
def test_bad_attributes_are_refused_at_build_time(build, message):
    x = gc.input("x", ("N", 3))
    with pytest.raises((gc.GraphError, gc.GraphTypeError), match=message):
        build(x)


def test_index_out_of_range_is_an_index_error():
    x = gc.input("x", (2, 3))
    with pytest.raises(IndexError, match=r"index 3 is out of bounds for axis 1 with size 3"):
        x[:, 3]


def test_bad_leaves_are_refused():
    with pytest.raises(TypeError, match="dtype complex64 is not supported"):
        gc.input("x", (2,), "complex64")
    with pytest.raises(ValueError, match="a dim must be nonnegative"):
        gc.input("x", (-1,))
    with pytest.raises(ValueError, match="symbolic dim must be an identifier"):
        gc.input("x", ("N+1",))
    with pytest.raises(TypeError, match="param 'p': dtype <U1 is not supported|dtype"):
        gc.param("p", np.array(["a"]))
    with pytest.raises(TypeError, match="cannot use str"):
        gc.input("x", (2,)) + "a"
