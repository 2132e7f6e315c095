"""The packed GEMM behind matmul and convolutions, against the NumPy backend: awkward
shapes (1, primes, tall and skinny, more than one cache block in every direction),
transposed operands read in place, broadcast batches, float64, epilogues, convolutions
with strides, C=1 and rectangular kernels, and identical bits for any thread count."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}
# A sum of k products of O(1) numbers is O(sqrt(k)); an element near zero cancels that
# much, so it gets an absolute bound of a few ulps of sqrt(k) (summation order differs
# from BLAS).
DEPTH_ATOL = {"float32": 2e-6, "float64": 1e-14}


def _both(inputs, outputs, args, optimize=True, threads=None):
    llvm = gc.compile(inputs, outputs, backend="llvm", optimize=optimize, threads=threads)
    ref = gc.compile(inputs, outputs, backend="numpy", optimize=optimize)
    return llvm, llvm(*args), ref(*args)


def _close(got, expected, dtype, depth=1):
    tol = dict(TOL[dtype], atol=max(TOL[dtype]["atol"], DEPTH_ATOL[dtype] * depth ** 0.5))
    got = got if isinstance(got, list) else [got]
    expected = expected if isinstance(expected, list) else [expected]
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, **tol)


def _ops(fn) -> list[str]:
    return [s.node.op for s in fn.compiled().plan.steps if s.node is not None]


SHAPES = [(1, 1, 1), (1, 17, 1), (13, 31, 7), (517, 3, 2), (2, 300, 97), (9, 1, 33),
          (300, 600, 40), (5, 7, 1100), (129, 257, 65)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,k,n", SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in SHAPES])
def test_matmul_shapes(m, k, n, dtype):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, b = gc.input("a", (m, k), dtype), gc.input("b", (k, n), dtype)
    args = [rng.normal(size=(m, k)).astype(dtype), rng.normal(size=(k, n)).astype(dtype)]
    _, got, expected = _both([a, b], a @ b, args)
    _close(got, expected, dtype, depth=k)


def test_last_row_panel_of_each_height():
    """M = 7..11 over whole column panels: the last row panel has each height from 1 to
    MR - 1 below a 6-row tile (its own kernel, straight into C), across depth blocks
    (accumulating), with A read in place (16 columns), packed (80) and transposed (read
    in place with 11 and 64 columns)."""
    rng = np.random.default_rng(21)
    inputs, outputs, args = [], [], []
    for m in range(7, 12):
        a, b, c, d = (gc.input(f"{name}{m}", shape) for name, shape in (
            ("a", (m, 600)), ("b", (600, 16)), ("c", (600, 80)), ("d", (600, 64))))
        inputs += [a, b, c, d]
        outputs += [a @ b, a @ c, gc.transpose(c) @ gc.transpose(a), gc.transpose(c) @ d]
        args += [rng.normal(size=v.shape).astype(np.float32) for v in (a, b, c, d)]
    _, got, expected = _both(inputs, outputs, args, threads=1)
    _close(got, expected, "float32", depth=600)
    for g_, r in zip(gc.compile(inputs, outputs, threads=2)(*args), got, strict=True):
        np.testing.assert_array_equal(g_, r)


def test_empty_depth_gives_zeros():
    a, b = gc.input("a", (3, 0)), gc.input("b", (0, 4))
    fn = gc.compile([a, b], a @ b)
    np.testing.assert_array_equal(fn(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32)),
                                  np.zeros((3, 4), np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_transposed_operands_are_read_in_place(dtype):
    rng = np.random.default_rng(3)
    x, y = gc.input("x", (37, 19), dtype), gc.input("y", (41, 37), dtype)
    outputs = [gc.transpose(x) @ gc.transpose(y), gc.transpose(y @ x) @ y]
    args = [rng.normal(size=(37, 19)).astype(dtype), rng.normal(size=(41, 37)).astype(dtype)]
    fn, got, expected = _both([x, y], outputs, args)
    _close(got, expected, dtype)
    assert "transpose" not in _ops(fn)
    assert len(fn.compiled().plan.strided) == 3


def test_gradients_of_matmul_read_transposes_in_place():
    rng = np.random.default_rng(4)
    w = gc.param("w", rng.normal(size=(23, 11)).astype(np.float32))
    x = gc.input("x", (29, 23))
    loss = gc.sum(gc.tanh(x @ w))
    outputs = [loss, *gc.grad(loss, [w, x])]
    fn, got, expected = _both([x], outputs, [rng.normal(size=(29, 23)).astype(np.float32)])
    _close(got, expected, "float32")
    assert "transpose" not in _ops(fn)


# (m, k, n): full and partial panels, depths that are and are not multiples of the packing
# blocks (8 and 16 float32, 8 float64) and more than one depth block.
PACKED = [(16, 16, 32), (19, 37, 45), (24, 300, 64), (8, 5, 33), (65, 513, 70)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("at,bt", [(False, False), (True, False), (False, True), (True, True)],
                         ids=["ab", "aTb", "abT", "aTbT"])
@pytest.mark.parametrize("m,k,n", PACKED, ids=[f"{m}x{k}x{n}" for m, k, n in PACKED])
def test_operand_layouts_pack_alike(m, k, n, at, bt, dtype):
    """Row-major and transposed operands take different packing paths (vector loads,
    transposed blocks, elements at the edges); every path gives what NumPy gives."""
    rng = np.random.default_rng(m + 10 * k + 100 * n + at + 2 * bt)
    x = gc.input("x", (k, m) if at else (m, k), dtype)
    y = gc.input("y", (n, k) if bt else (k, n), dtype)
    out = (gc.transpose(x) if at else x) @ (gc.transpose(y) if bt else y)
    args = [rng.normal(size=v.shape).astype(dtype) for v in (x, y)]
    fn, got, expected = _both([x, y], out, args)
    _close(got, expected, dtype, depth=k)
    assert "transpose" not in _ops(fn)


def test_mixed_dtypes_pack_by_elements():
    """Operands of another dtype than the result are converted while packed."""
    rng = np.random.default_rng(11)
    x, y = gc.input("x", (40, 33)), gc.input("y", (33, 50), "float64")
    args = [rng.normal(size=(40, 33)).astype(np.float32), rng.normal(size=(33, 50))]
    _, got, expected = _both([x, y], [x @ y, gc.transpose(y) @ gc.transpose(x)], args)
    _close(got, expected, "float64", depth=33)


def test_transposed_output_is_still_computed():
    x = gc.input("x", (3, 5), "float64")
    t = gc.transpose(x)
    rng = np.random.default_rng(5)
    value = rng.normal(size=(3, 5))
    _, got, expected = _both([x], [t, t @ x], [value])
    _close(got, expected, "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batched_broadcast_and_transposed_batches(dtype):
    rng = np.random.default_rng(6)
    a, b = gc.input("a", (2, 1, 5, 7), dtype), gc.input("b", (3, 7, 4), dtype)
    c = gc.input("c", (3, 2, 4, 6), dtype)
    outputs = [a @ b, gc.transpose(a @ b, (0, 1, 3, 2)) @ a,
               gc.transpose(c, (1, 0, 3, 2)) @ gc.transpose(b, (0, 2, 1))]
    args = [rng.normal(size=s).astype(dtype) for s in ((2, 1, 5, 7), (3, 7, 4), (3, 2, 4, 6))]
    _, got, expected = _both([a, b, c], outputs, args)
    _close(got, expected, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_epilogue(dtype):
    rng = np.random.default_rng(7)
    x, w, bias = gc.input("x", (70, 45), dtype), gc.input("w", (45, 66), dtype), \
        gc.input("bias", (66,), dtype)
    out = gc.gelu(x @ w + bias) * 2.0
    args = [rng.normal(size=(70, 45)).astype(dtype), rng.normal(size=(45, 66)).astype(dtype),
            rng.normal(size=66).astype(dtype)]
    fn, got, expected = _both([x, w, bias], out, args)
    _close(got, expected, dtype)
    assert _ops(fn) == ["fused_matmul"]


def test_integer_matmul_keeps_exact_loops():
    a, b = gc.input("a", (4, 3), "int64"), gc.input("b", (3, 5), "int32")
    av, bv = np.arange(12).reshape(4, 3), np.arange(15, dtype=np.int32).reshape(3, 5)
    _, got, expected = _both([a, b], gc.transpose(gc.transpose(b) @ gc.transpose(a)), [av, bv])
    np.testing.assert_array_equal(got, expected)


CONVS = [  # N, C, H, W, O, kh, kw, stride, padding
    (2, 1, 8, 8, 16, 3, 3, 1, 1), (3, 2, 7, 9, 4, 3, 3, 2, 1), (2, 3, 6, 5, 5, 2, 2, 1, 0),
    (1, 4, 5, 5, 2, 5, 5, 1, 2), (2, 3, 9, 9, 4, 3, 2, 2, 0), (2, 5, 11, 10, 37, 3, 3, 1, 1),
    (1, 1, 28, 28, 6, 5, 5, 1, 2),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", CONVS, ids=["x".join(map(str, c)) for c in CONVS])
def test_conv2d_and_gradients(shape, dtype):
    n, c, h, wd, o, kh, kw, stride, padding = shape
    rng = np.random.default_rng(sum(shape))
    x, w = gc.input("x", (n, c, h, wd), dtype), gc.input("w", (o, c, kh, kw), dtype)
    bias = gc.input("bias", (o,), dtype)
    y = gc.relu(gc.conv2d(x, w, bias, stride=stride, padding=padding))
    g = gc.input("g", y.shape, dtype)
    outputs = [y, *gc.grad(gc.sum(y * g), [x, w, bias])]
    ho, wo = ((h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1)
    args = [rng.normal(size=s).astype(dtype)
            for s in ((n, c, h, wd), (o, c, kh, kw), (o,), (n, o, ho, wo))]
    fn, got, expected = _both([x, w, bias, g], outputs, args)
    _close(got, expected, dtype)
    assert "fused_conv2d" in _ops(fn)


def test_identical_bits_for_any_thread_count():
    rng = np.random.default_rng(8)
    x, w = gc.input("x", (4, 3, 20, 20)), gc.input("w", (8, 3, 3, 3))
    a, b = gc.input("a", (150, 700)), gc.input("b", (700, 90))
    y = gc.conv2d(x, w, padding=1)
    outputs = [a @ b, gc.transpose(a) @ (a @ b), (a @ b) @ gc.transpose(b), y,
               *gc.grad(gc.sum(y * y), [x, w])]
    args = [rng.normal(size=s).astype(np.float32)
            for s in ((4, 3, 20, 20), (8, 3, 3, 3), (150, 700), (700, 90))]
    reference = gc.compile([x, w, a, b], outputs, threads=1)(*args)
    for threads in (2, 3, 9):
        got = gc.compile([x, w, a, b], outputs, threads=threads)(*args)
        for g_, r in zip(got, reference, strict=True):
            np.testing.assert_array_equal(g_, r, err_msg=f"threads={threads}")


def _same_on_any_thread_count(inputs, outputs, args, dtype, depth):
    """The outputs on 2, 3 and 9 threads (9: more threads than scratch slots) are the bits
    of one thread, and match NumPy."""
    one, got, expected = _both(inputs, outputs, args, threads=1)
    _close(got, expected, dtype, depth=depth)
    got = got if isinstance(got, list) else [got]
    for threads in (2, 3, 9):
        again = gc.compile(inputs, outputs, threads=threads)(*args)
        for g_, r in zip(again if isinstance(again, list) else [again], got, strict=True):
            np.testing.assert_array_equal(g_, r, err_msg=f"threads={threads}")


# (m, k, n): (column block, row block) items that 2, 3 and 9 threads share unevenly (a
# thread's run of items ending inside a column block, whose panels both threads then pack;
# a thread left without items), partial last row blocks and panels, three depth blocks; then
# a GEMM too small to split by rows (one row block: column blocks are shared out) and one
# too small to thread at all.
UNEVEN = [(300, 600, 1100), (129, 1100, 700), (1000, 520, 600), (64, 513, 1000),
          (8, 600, 1100), (3, 5, 7)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bt", [False, True], ids=["b", "bT"])
@pytest.mark.parametrize("m,k,n", UNEVEN, ids=[f"{m}x{k}x{n}" for m, k, n in UNEVEN])
def test_uneven_thread_shares(m, k, n, bt, dtype):
    rng = np.random.default_rng(m + 7 * k + 31 * n + bt)
    x, y = gc.input("x", (m, k), dtype), gc.input("y", (n, k) if bt else (k, n), dtype)
    args = [rng.normal(size=v.shape).astype(dtype) for v in (x, y)]
    _same_on_any_thread_count([x, y], x @ (gc.transpose(y) if bt else y), args, dtype, k)


def test_thread_shares_of_an_odd_batch_with_an_epilogue():
    """Three batch items of two row blocks each (threads split a batch item's rows; the
    epilogue runs on the rows each thread computed), and a fused bias and activation."""
    rng = np.random.default_rng(12)
    a, w = gc.input("a", (3, 130, 300)), gc.input("w", (3, 300, 900))
    bias = gc.input("bias", (900,))
    outputs = [a @ w, gc.gelu(a @ w + bias)]
    args = [rng.normal(size=v.shape).astype(np.float32) for v in (a, w, bias)]
    _same_on_any_thread_count([a, w, bias], outputs, args, "float32", 300)


def test_image_patch_runs_across_depth_blocks():
    """The weight gradient of a stride-1 convolution on the GEMM: image patches packed by
    runs along image rows. Rows of 30 pixels: a run crosses the end of a depth block (512),
    and its block's rows past that end are written past the panel."""
    from graphc.backends.llvm.lower.conv.grad_weight import grad_weight_path

    shape, kernel = (7, 64, 30, 30), (64, 64, 3, 3)
    assert grad_weight_path("float32", shape, shape, (3, 3), (1, 1), (1, 1)) == "gemm"
    rng = np.random.default_rng(13)
    x, w = gc.input("x", shape), gc.input("w", kernel)
    g = gc.input("g", shape)
    (gw,) = gc.grad(gc.sum(gc.conv2d(x, w, padding=1) * g), [w])
    args = [rng.normal(size=s).astype(np.float32) for s in (shape, kernel, shape)]
    _same_on_any_thread_count([x, w, g], gw, args, "float32", 7 * 30 * 30)
