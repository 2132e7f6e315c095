"""Big elementwise outputs are streamed (computed a block at a time, written with
non-temporal stores): every element equals what the same kernel computes on a small array
(which is not streamed), for 1 to 3 threads, lengths that leave partial blocks, float64,
broadcast operands and an output that takes an input's buffer."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.codegen import nest
from graphc.backends.llvm.runtime import target

X86 = target.host()[0].startswith("x86_64")  # streaming needs x86's sfence
BIG = nest.STREAM_BYTES // 4 + 1237  # float32 elements: streamed, a partial block at the end


def _chain(a, b, c, d):
    return gc.relu(a * b + c) * gc.sigmoid(d)


def _data(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=n).astype(dtype) for _ in range(4)]
    arrays[0][:4] = [np.nan, np.inf, -0.0, -np.inf]
    return arrays


def _piecewise(fn, arrays, piece=4096):
    """fn over consecutive pieces of the arrays (small: not streamed), joined."""
    n = arrays[0].shape[0]
    return np.concatenate([fn(*(x[i:i + piece] for x in arrays))
                           for i in range(0, n, piece)])


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_streamed_output_equals_the_unstreamed_kernel(dtype, threads):
    n = BIG if dtype == "float32" else BIG // 2 + 5
    arrays = _data(n, dtype)
    inputs = [gc.input(k, (n,), dtype) for k in "abcd"]
    big = gc.compile(inputs, _chain(*inputs), threads=threads)
    assert nest.streams((n,), [[1]] * 5, np.dtype(dtype)) == X86
    small_inputs = [gc.input(k, (4096,), dtype) for k in "abcd"]
    small = gc.compile(small_inputs, _chain(*small_inputs), threads=1)
    tail = [gc.input(k, (n % 4096,), dtype) for k in "abcd"]
    short = gc.compile(tail, _chain(*tail), threads=1)
    expected = _piecewise(lambda *p: (small if p[0].shape[0] == 4096 else short)(*p), arrays)
    got = big(*arrays)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_broadcast_operand():
    """A (1,)-shaped operand broadcasts along the streamed run."""
    n = BIG
    a, b, c = gc.input("a", (n,)), gc.input("b", (n,)), gc.input("c", (1,))
    step = gc.compile([a, b, c], gc.sigmoid(gc.exp(a * b + c) * 0.5 - c), threads=2)
    rng = np.random.default_rng(3)
    args = [rng.normal(size=n).astype(np.float32) for _ in range(2)] + [
        np.array([0.25], np.float32)]
    m = 4096
    pa, pb = gc.input("a", (m,)), gc.input("b", (m,))
    piece = gc.compile([pa, pb, c], gc.sigmoid(gc.exp(pa * pb + c) * 0.5 - c))
    expected = np.concatenate([piece(args[0][i:i + m], args[1][i:i + m], args[2])
                               for i in range(0, n - n % m, m)])
    got = step(*args)
    np.testing.assert_array_equal(got[:n - n % m], expected)
    reference = gc.compile([a, b, c], gc.sigmoid(gc.exp(a * b + c) * 0.5 - c),
                           backend="numpy")(*args)
    np.testing.assert_allclose(got, reference, rtol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_param_updated_in_place(threads):
    """An SGD update writes the param's own buffer, each block after reading it."""
    rng = np.random.default_rng(4)
    start = rng.normal(size=BIG).astype(np.float32)
    p = gc.param("p", start.copy())
    g = gc.input("g", (BIG,))
    step = gc.compile([g], [], updates={p: p - 0.5 * g}, threads=threads)
    grad = rng.normal(size=BIG).astype(np.float32)
    step(grad)
    np.testing.assert_array_equal(p.value, start - np.float32(0.5) * grad)


def test_small_and_strided_outputs_are_not_streamed():
    assert not nest.streams((1024,), [[1], [1]], np.dtype("float32"))
    assert not nest.streams((4096, 4096), [[4096, 1], [1, 4096]], np.dtype("float32"))
    assert nest.streams((4096, 4096), [[4096, 1], [0, 0]], np.dtype("float32")) == X86
