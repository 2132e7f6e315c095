"""Strided views (schedule/views.py): transposes, slices and reshapes that only matmuls and copy
kernels read are offsets and strides into their source's buffer, not kernels; the
results match the NumPy backend on every path."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.schedule.views import reshape_strides


def _run(inputs, outputs, args, threads=1):
    fn = gc.compile(inputs, outputs, threads=threads)
    got = fn(*args)
    expected = gc.compile(inputs, outputs, backend="numpy")(*args)
    return fn, got, expected


def _ops(fn) -> list[str]:
    return [s.node.op if s.node is not None else "copy" for s in fn.compiled().plan.steps]


def _attention(b, t, heads, dh, dtype):
    """q, k, v sliced from one projection, as a transformer block splits them."""
    x = gc.input("x", (b, t, heads * dh), dtype)
    w = gc.input("w", (heads * dh, 3 * heads * dh), dtype)
    qkv = gc.transpose(gc.reshape(x @ w, (b, t, 3, heads, dh)), (2, 0, 3, 1, 4))
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = gc.softmax(q @ gc.transpose(k, (0, 1, 3, 2)))
    out = gc.reshape(gc.transpose(scores @ v, (0, 2, 1, 3)), (b, t, heads * dh))
    return x, w, out


@pytest.mark.parametrize("threads", [1, 2])
def test_attention_reads_q_k_v_in_place_forward_and_backward(threads):
    rng = np.random.default_rng(0)
    x, w, out = _attention(2, 8, 4, 16, "float64")
    outputs = [out, *gc.grad(gc.sum(out * out), [x, w])]
    args = [rng.normal(size=x.shape), rng.normal(size=w.shape) / 8]
    fn, got, expected = _run([x, w], outputs, args, threads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    ops = _ops(fn)
    # Forward: no slice kernels and no transpose of qkv; backward: the gradients of q, k
    # and v are one concatenation, not zero-filled slice gradients summed.
    assert "slice" not in ops and "slice_grad" not in ops
    assert ops.count("concat") == 1
    offsets = {v.offset for n, v in fn.compiled().plan.strided.items() if n.op == "slice"}
    assert offsets == {0, 64, 128}


def test_a_misaligned_slice_is_copied():
    """A view starts on a 64-byte boundary (kernels may load aligned vectors): a slice
    starting one float in is a kernel, and still right."""
    rng = np.random.default_rng(1)
    a, b = gc.input("a", (9, 33)), gc.input("b", (32, 5))
    out = a[:, 1:] @ b
    args = [rng.normal(size=(9, 33)).astype(np.float32),
            rng.normal(size=(32, 5)).astype(np.float32)]
    fn, got, expected = _run([a, b], out, args)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert "slice" in _ops(fn)


def test_a_view_an_elementwise_kernel_reads_is_computed():
    rng = np.random.default_rng(2)
    a = gc.input("a", (4, 6, 8))
    t = gc.transpose(a, (1, 0, 2))
    outputs = [t[:2] @ gc.constant(np.ones((8, 3), np.float32)), gc.exp(t)]
    args = [rng.normal(size=(4, 6, 8)).astype(np.float32)]
    fn, got, expected = _run([a], outputs, args)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5)
    assert "transpose" in _ops(fn)


def test_copies_read_strided_views():
    """transpose, slice, broadcast_to and concat kernels read a view through its strides."""
    rng = np.random.default_rng(3)
    a = gc.input("a", (6, 4, 16))
    view = gc.transpose(a, (1, 0, 2))[1:3]  # (2, 6, 16) at offset 16 floats
    outputs = [gc.concat([view, view], 0), gc.transpose(view, (2, 0, 1)),
               gc.broadcast_to(gc.reshape(view, (2, 1, 6, 16)), (2, 3, 6, 16)),
               view[:, ::2] @ gc.constant(np.ones((16, 2), np.float32))]
    args = [rng.normal(size=(6, 4, 16)).astype(np.float32)]
    fn, got, expected = _run([a], outputs, args)
    for g, e in zip(got[:3], expected[:3]):  # copies: exact
        np.testing.assert_array_equal(g, e)
    np.testing.assert_allclose(got[3], expected[3], rtol=1e-6)
    assert fn.compiled().plan.strided[view].offset == 16
    assert _ops(fn) == ["concat", "transpose", "broadcast_to", "matmul"]


@pytest.mark.parametrize("shape,axes,index,new_shape", [
    ((4, 6, 8), (1, 0, 2), (slice(None), slice(1, 3)), (6, 2, 8)),
    ((4, 6, 8), (0, 1, 2), (slice(1, 3),), (2, 48)),
    ((4, 6, 8), (2, 0, 1), (slice(None),), (8, 4, 2, 3)),
    ((3, 1, 5), (0, 1, 2), (slice(None),), (1, 15, 1)),
    ((2, 3, 4), (1, 0, 2), (slice(None),), (3, 8)),
    ((2, 3, 4), (1, 0, 2), (slice(None),), (6, 4)),
])
def test_reshape_strides_agree_with_numpy(shape, axes, index, new_shape):
    base = np.arange(np.prod(shape), dtype=np.float32).reshape(shape).transpose(axes)[index]
    strides = tuple(s // 4 for s in base.strides)
    found = reshape_strides(base.shape, strides, new_shape)
    try:  # NumPy's view, when it can make one without a copy
        view = base.view()
        view.shape = new_shape
    except AttributeError:
        assert found is None
        return
    assert found is not None
    rebuilt = np.lib.stride_tricks.as_strided(base, new_shape, [s * 4 for s in found])
    np.testing.assert_array_equal(rebuilt, base.reshape(new_shape))
