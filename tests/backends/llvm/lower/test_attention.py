"""The fused attention kernels (graphc/backends/llvm/lower/attention.py) beyond the op
table: shapes that leave partial vectors and row blocks, a mask and causality together,
strided and broadcast operands, empty sequences, the same bits for any thread count, and
no (L, S) matrix in the arena."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops.attention import attention


def _both(inputs, outputs, arrays, **options):
    got = gc.compile(inputs, outputs, **options)(*arrays)
    expected = gc.compile(inputs, outputs, backend="numpy")(*arrays)
    return got, expected


def _check(got, expected, dtype):
    rtol, atol = (1e-4, 1e-5) if dtype == "float32" else (1e-10, 1e-12)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ragged_shapes_with_a_mask_causality_and_gqa_together(dtype):
    """L = 11 (two row blocks and a partial one), S = 13, E = 5, Ev = 3 (partial
    vectors), 6 query heads over 2 key/value heads, a float mask and causality (the layers'
    combination), dropout: forward, all gradients and the mask's."""
    rng = np.random.default_rng(0)
    shapes = [(2, 6, 11, 5), (2, 2, 13, 5), (2, 2, 13, 3), (6, 11, 13)]
    nodes = [gc.input(f"x{k}", s, dtype) for k, s in enumerate(shapes)]
    arrays = [rng.normal(size=s).astype(dtype) for s in shapes]
    out = attention(*nodes, dropout_p=0.2, causal=True, gqa=True, seed=3)
    grads = gc.grad(gc.sum(out * out), nodes)
    _check(*_both(nodes, [out, *grads], arrays), dtype)


def test_strided_and_broadcast_operands():
    """Heads as transposed views of one projection, keys shared by the batch."""
    rng = np.random.default_rng(1)
    x = gc.input("x", (3, 7, 12), "float64")
    keys = gc.input("k", (1, 2, 9, 6), "float64")
    q = gc.transpose(gc.reshape(x, (3, 7, 2, 6)), (0, 2, 1, 3))
    out = gc.scaled_dot_product_attention(q, keys, gc.transpose(keys, (0, 1, 2, 3)) * 2.0)
    grads = gc.grad(gc.sum(out * out), [x, keys])
    arrays = [rng.normal(size=(3, 7, 12)), rng.normal(size=(1, 2, 9, 6))]
    _check(*_both([x, keys], [out, *grads], arrays), "float64")


def test_empty_sequences():
    for length, source in ((0, 4), (3, 0)):
        q = gc.input("q", (2, length, 4), "float64")
        k = gc.input("k", (2, source, 4), "float64")
        out = gc.scaled_dot_product_attention(q, k, k)
        grads = gc.grad(gc.sum(out), [q, k])
        arrays = [np.ones((2, length, 4)), np.ones((2, source, 4))]
        got, expected = _both([q, k], [out, *grads], arrays)
        _check(got, expected, "float64")
        assert not np.any(got[0])


def test_the_same_bits_on_one_thread_and_two():
    rng = np.random.default_rng(2)
    shapes = [(4, 3, 37, 16), (4, 3, 29, 16), (4, 3, 29, 16), (37, 29)]
    nodes = [gc.input(f"x{k}", s) for k, s in enumerate(shapes)]
    arrays = [rng.normal(size=s).astype(np.float32) for s in shapes]
    out = gc.scaled_dot_product_attention(*nodes[:3], attn_mask=nodes[3], dropout_p=0.1, seed=2)
    outputs = [out, *gc.grad(gc.sum(out * out), nodes)]
    one = gc.compile(nodes, outputs, threads=1)(*arrays)
    two = gc.compile(nodes, outputs, threads=2)(*arrays)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_score_matrix_is_stored():
    """Forward and backward at L = S = 1024: the arena holds the inputs' and outputs'
    sized values and per-thread rows, far less than one (L, S) matrix per head."""
    heads, length, dim = 2, 1024, 16
    q = gc.input("q", (heads, length, dim))
    out = gc.scaled_dot_product_attention(q, q, q, is_causal=True)
    (g,) = gc.grad(gc.sum(out * out), [q])
    f = gc.compile([q], [out, g])
    f(np.random.default_rng(3).normal(size=(heads, length, dim)).astype(np.float32))
    scores_bytes = heads * length * length * 4
    assert f.memory_report()["arena_bytes"] < scores_bytes / 4
