"""Creation ops (graphc/ops/creation.py) against PyTorch: dtypes and values of zeros,
ones, full, arange, linspace, eye, tril and triu; constants where the shape is static;
symbolic sizes at several bound sizes on both backends; gradients through the triangles;
refused arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc as gc
from graphc.errors import GraphError, GraphTypeError
from graphc.ir.program import Program
from graphc.passes import optimize

BACKENDS = ["numpy", "llvm"]


def _value(node):
    """A value computed without inputs (both backends agree on it)."""
    results = [gc.compile([], node, backend=b)() for b in BACKENDS]
    np.testing.assert_array_equal(*results)
    assert results[0].dtype == results[1].dtype
    return results[0]


def _same_as_torch(node, tensor):
    got = _value(node)
    expected = tensor.numpy()
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    np.testing.assert_array_equal(got, expected)


def test_full_zeros_ones_take_pytorchs_dtypes():
    _same_as_torch(gc.zeros(2, 3), torch.zeros(2, 3))
    _same_as_torch(gc.ones((2, 3), dtype="int16"), torch.ones((2, 3), dtype=torch.int16))
    _same_as_torch(gc.full((2,), 7), torch.full((2,), 7))
    _same_as_torch(gc.full((2, 2), 0.5), torch.full((2, 2), 0.5))
    _same_as_torch(gc.full((3,), True), torch.full((3,), True))
    _same_as_torch(gc.full((2,), 2.7, dtype="int32"), torch.full((2,), 2.7, dtype=torch.int32))
    _same_as_torch(gc.zeros(()), torch.zeros(()))


@pytest.mark.parametrize("args, kwargs", [
    ((5,), {}), ((2, 9), {}), ((1, 10, 3), {}), ((10, 1, -3), {}), ((0.0, 1.0, 0.1), {}),
    ((-1, 1.5, 0.25), {}), ((5,), {"dtype": "float64"}), ((0, 7, 2), {"dtype": "uint8"}),
    ((3, 3), {}), ((1.0, 0.0, -0.3), {"dtype": "float64"}),
])
def test_arange_as_pytorch(args, kwargs):
    dtype = getattr(torch, kwargs["dtype"]) if "dtype" in kwargs else None
    got, expected = _value(gc.arange(*args, **kwargs)), torch.arange(*args, dtype=dtype).numpy()
    assert got.dtype == expected.dtype and got.shape == expected.shape
    # start + i * step rounded twice (PyTorch fuses it into one fma: within an ulp)
    tolerance = 2 * np.finfo(got.dtype).eps if got.dtype.kind == "f" else 0
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("args", [(0, 1, 5), (-2.5, 10, 7), (3, 3, 1), (0, 1, 0), (1, -1, 2),
                                  (0, 10, 11)])
def test_linspace_as_pytorch(args):
    """PyTorch's values (from both ends), computed in float64 as NumPy computes them (a
    float32 PyTorch linspace rounds in float32 on the way: within 2 of its ulps)."""
    for name in ("float32", "float64"):
        got = _value(gc.linspace(*args, dtype=name))
        expected = torch.linspace(*args, dtype=getattr(torch, name)).numpy()
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=2 * np.finfo(name).eps)
        np.testing.assert_array_equal(got[-1:], expected[-1:])  # the end, exactly
    assert _value(gc.linspace(0, 1, 3)).dtype == np.float32


def test_eye_as_pytorch():
    _same_as_torch(gc.eye(3), torch.eye(3))
    _same_as_torch(gc.eye(2, 4, dtype="int64"), torch.eye(2, 4, dtype=torch.int64))
    _same_as_torch(gc.eye(0), torch.eye(0))


@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 3), (1, 1)])
def test_tril_triu_as_pytorch(shape):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) - 3
    outs, expected = [], []
    for diagonal in (-5, -1, 0, 1, 2, 7):
        for ours, theirs in ((gc.tril, torch.tril), (gc.triu, torch.triu)):
            for value in (x, x > 2):
                outs.append(ours(gc.constant(value), diagonal=diagonal))
                expected.append(theirs(torch.from_numpy(value), diagonal=diagonal).numpy())
    for backend in BACKENDS:
        for got, e in zip(gc.compile([], outs, backend=backend)(), expected, strict=True):
            assert got.dtype == e.dtype
            np.testing.assert_array_equal(got, e)


def test_static_creations_are_constants_after_optimization():
    outs = [gc.zeros(3, 4), gc.full((2, 2), 1.5), gc.arange(6), gc.eye(3),
            gc.tril(gc.ones(4, 4)), gc.linspace(0, 1, 3)]
    program = optimize(Program((), tuple(outs), ()))
    assert [o.op for o in program.outputs] == ["constant"] * len(outs)
    huge = optimize(Program((), (gc.zeros(4096, 4096),), ())).outputs[0]
    assert huge.op == "broadcast_to" and huge.inputs[0].value.shape == ()


def test_huge_creations_hold_no_huge_array_and_compute_at_call_time():
    """arange(10**12), eye(10**6), linspace(0, 1, 10**9) build at once (nothing that size
    is made); a big arange, linspace or mask is computed by a kernel, as the small ones."""
    for node in (gc.arange(10**12), gc.eye(10**6), gc.linspace(0, 1, 10**9),
                 gc.tril(gc.ones(10**5, 10**5))):
        assert all(n.op != "constant" or n.value.size <= 1 << 17 for n in gc.Graph([node]))
    outs = [gc.arange(3, 200_003, 2)[-2:], gc.linspace(-2, 5, 100_001)[::25_000],
            gc.sum(gc.eye(300, 400, dtype="int64")), gc.sum(gc.tril(gc.ones(400, 400)))]
    expected = [torch.arange(3, 200_003, 2)[-2:], torch.linspace(-2, 5, 100_001)[::25_000],
                torch.eye(300, 400, dtype=torch.int64).sum(),
                torch.tril(torch.ones(400, 400)).sum()]
    for backend in BACKENDS:
        for got, e in zip(gc.compile([], outs, backend=backend)(), expected, strict=True):
            e = e.numpy()
            assert got.dtype == e.dtype
            np.testing.assert_allclose(got, e, rtol=2 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_symbolic_sizes_at_any_bound_size(backend):
    x = gc.input("x", ("N", "T"), "float32")
    n, t = x.shape
    outs = [gc.zeros_like(x) + x, gc.ones_like(x, dtype="int8"), gc.full_like(x, -2.5),
            gc.arange(t), gc.arange(2, n, dtype="float32"), gc.arange(n, 0, -1), gc.eye(n, t),
            gc.tril(x), gc.triu(gc.ones(t, t), 1), gc.zeros(n, 2, dtype="uint8")]
    f = gc.compile([x], outs, backend=backend)
    for rows, cols in [(3, 5), (1, 1), (4, 2), (0, 3)]:
        value = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols) + 1
        got = f(value)
        tv = torch.from_numpy(value)
        expected = [value, torch.ones_like(tv, dtype=torch.int8), torch.full_like(tv, -2.5),
                    torch.arange(cols),
                    np.arange(2, rows, dtype=np.float32),  # empty below 2 (PyTorch raises)
                    torch.arange(rows, 0, -1), torch.eye(rows, cols), torch.tril(tv),
                    torch.triu(torch.ones(cols, cols), 1),
                    torch.zeros(rows, 2, dtype=torch.uint8)]
        for g, e in zip(got, expected, strict=True):
            e = np.asarray(e)
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_array_equal(g, e)


def test_the_triangles_gradient_flows_to_the_kept_entries():
    x, w = gc.input("x", (2, "T", "T"), "float64"), gc.input("w", (2, "T", "T"), "float64")
    weights = np.random.default_rng(0).normal(size=(2, 4, 4))
    loss = gc.sum(gc.tril(x, -1) * w) + gc.sum(gc.triu(x, 2) * w * 3.0)
    (grad,) = gc.compile([x, w], gc.grad(loss, [x]))(np.zeros((2, 4, 4)), weights)
    w = weights
    np.testing.assert_array_equal(grad, np.tril(w, -1) + 3.0 * np.triu(w, 2))


@pytest.mark.parametrize("call, message", [
    (lambda: gc.zeros(2, -1), r"zeros: shape \(2, -1\): a dim must be nonnegative"),
    (lambda: gc.zeros(3, "int32"), "zeros: the dim 'int32' is a dtype's name: give the dtype "
                                   "as dtype='int32'"),
    (lambda: gc.full((2,), "x"), "full: fill_value must be a Python number"),
    (lambda: gc.full((2,), 300, dtype="uint8"), "full: fill_value 300 is out of bounds for "
                                                "uint8"),
    (lambda: gc.ones(2, dtype="complex64"), "ones: dtype: dtype complex64 is not supported"),
    (lambda: gc.arange(0, 5, 0), "arange: step must not be 0"),
    (lambda: gc.arange(5, 0), "arange: the range from 0 to 5 by 1|arange: the range from 5"),
    (lambda: gc.arange(float("nan")), "arange: end must be finite"),
    (lambda: gc.linspace(0, 1, -1), "linspace: steps must be an int >= 0, got -1"),
    (lambda: gc.eye(-2), r"eye: sizes -2, -2: a dim must be nonnegative"),
    (lambda: gc.tril(gc.ones(3)), r"tril: needs a value of at least 2 dims, got shape \(3,\)"),
    (lambda: gc.triu(gc.ones(3, 3), 0.5), "triu: diagonal must be an int, got 0.5"),
])
def test_refused_arguments_name_the_op_and_the_line(call, message):
    with pytest.raises((GraphError, GraphTypeError),
                       match=rf"({message}).*\(at .*test_creation.py:\d+\)"):
        call()


def test_a_symbolic_arange_needs_int_arguments():
    x = gc.input("x", ("N",), "float32")
    with pytest.raises(GraphError, match="arange: with a symbolic bound, start and end must "
                                         "be ints or dims and step an int"):
        gc.arange(0.5, x.shape[0])
