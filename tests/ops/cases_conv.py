"""Op-table rows for convolution and pooling, with expectations computed by direct loops
over output positions (independent of graphc's im2col references). The loop references
are reused by tests/ops/test_conv.py and test_pool.py."""

from __future__ import annotations

import numpy as np

import graphc as gc
from tests.ops.harness import Case, In, optimized


def _pad(x, padding, fill=0.0):
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def conv2d_loops(x, w, stride=(1, 1), padding=(0, 0)):
    """out[n, o, i, j] = sum over (c, a, b) of xpad[n, c, i*sh + a, j*sw + b] * w[o, c, a, b]."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw) = stride
    xp = _pad(x, padding)
    ho, wo = _out(h, kh, sh, padding[0]), _out(wd, kw, sw, padding[1])
    out = np.zeros((n, o, ho, wo), np.result_type(x, w))
    for b in range(n):
        for f in range(o):
            for i in range(ho):
                for j in range(wo):
                    window = xp[b, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[b, f, i, j] = np.sum(window * w[f])
    return out


def conv2d_grad_input_loops(g, w, input_hw, stride=(1, 1), padding=(0, 0)):
    """Each g[n, o, i, j] * w[o] added into the window of x it came from."""
    n, _, ho, wo = g.shape
    _, c, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    h, wd = input_hw
    xp = np.zeros((n, c, max(h + 2 * ph, (ho - 1) * sh + kh), max(wd + 2 * pw, (wo - 1) * sw + kw)))
    for b in range(n):
        for f in range(g.shape[1]):
            for i in range(ho):
                for j in range(wo):
                    xp[b, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += g[b, f, i, j] * w[f]
    return xp[:, :, ph:ph + h, pw:pw + wd]


def conv2d_grad_weight_loops(x, g, kernel, stride=(1, 1), padding=(0, 0)):
    """dw[o] = sum over (n, i, j) of g[n, o, i, j] * the window of x at (i, j)."""
    n, c = x.shape[:2]
    o, ho, wo = g.shape[1:]
    (kh, kw), (sh, sw) = kernel, stride
    xp = _pad(x, padding)
    out = np.zeros((o, c, kh, kw))
    for b in range(n):
        for f in range(o):
            for i in range(ho):
                for j in range(wo):
                    out[f] += g[b, f, i, j] * xp[b, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
    return out


def _pool_windows(x, kernel, stride, padding, fill):
    """Yield (n, c, i, j, window, top, left) for every pooling window, by loops."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    xp = _pad(x, padding, fill)
    for b in range(n):
        for ch in range(c):
            for i in range(_out(h, kh, sh, padding[0])):
                for j in range(_out(w, kw, sw, padding[1])):
                    window = xp[b, ch, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    yield b, ch, i, j, window, i * sh - padding[0], j * sw - padding[1]


def _pool_out(x, kernel, stride, padding):
    n, c, h, w = x.shape
    return np.zeros((n, c, _out(h, kernel[0], stride[0], padding[0]),
                     _out(w, kernel[1], stride[1], padding[1])), x.dtype)


def max_pool2d_loops(x, kernel, stride, padding=(0, 0)):
    out = _pool_out(x, kernel, stride, padding)
    for b, c, i, j, window, _, _ in _pool_windows(x, kernel, stride, padding, -np.inf):
        out[b, c, i, j] = window.max()
    return out


def max_positions(x, kernel, stride, padding=(0, 0)):
    """(n, c, i, j, row, col): each window's first maximum, scanning the window row by row."""
    for b, c, i, j, window, top, left in _pool_windows(x, kernel, stride, padding, -np.inf):
        best = None
        for a in range(window.shape[0]):
            for d in range(window.shape[1]):
                if best is None or window[a, d] > window[best]:
                    best = (a, d)
        yield b, c, i, j, top + best[0], left + best[1]


def max_pool2d_grad_loops(x, g, kernel, stride, padding=(0, 0)):
    out = np.zeros_like(x, dtype=np.result_type(x, g))
    for b, c, i, j, row, col in max_positions(x, kernel, stride, padding):
        out[b, c, row, col] += g[b, c, i, j]
    return out


def max_pool2d_gather_loops(x, h, kernel, stride, padding=(0, 0)):
    out = _pool_out(x, kernel, stride, padding).astype(h.dtype)
    for b, c, i, j, row, col in max_positions(x, kernel, stride, padding):
        out[b, c, i, j] = h[b, c, row, col]
    return out


def avg_pool2d_loops(x, kernel, stride, padding=(0, 0)):
    out = _pool_out(x, kernel, stride, padding)
    for b, c, i, j, window, _, _ in _pool_windows(x, kernel, stride, padding, 0.0):
        out[b, c, i, j] = window.sum() / (kernel[0] * kernel[1])
    return out


def avg_pool2d_grad_loops(g, input_hw, kernel, stride, padding=(0, 0)):
    n, c, ho, wo = g.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    h, w = input_hw
    xp = np.zeros((n, c, max(h + 2 * ph, (ho - 1) * sh + kh), max(w + 2 * pw, (wo - 1) * sw + kw)))
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    xp[b, ch, i * sh:i * sh + kh, j * sw:j * sw + kw] += g[b, ch, i, j] / (kh * kw)
    return xp[:, :, ph:ph + h, pw:pw + w]


def conv1d_loops(x, w, stride=1, padding=0):
    """out[n, o, l] = sum over c, t of w[o, c, t] * x_padded[n, c, l * stride + t]."""
    n, c, length = x.shape
    o, _, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    out = np.zeros((n, o, _out(length, k, stride, padding)), dtype=np.result_type(x, w))
    for i in range(n):
        for j in range(o):
            for pos in range(out.shape[2]):
                out[i, j, pos] = np.sum(w[j] * xp[i, :, pos * stride:pos * stride + k])
    return out


def _op(name, *inputs, **attrs):
    return gc.Node.make(name, inputs, **attrs)


# A fixed input with well-separated values: max pooling's argmax positions for the rows that
# differentiate the gradient ops in g (x enters as a constant; those ops are constant in x).
_X_POOL = (np.random.default_rng(5).permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) * 0.1)
_MP = dict(kernel=(3, 2), stride=(2, 1), padding=(1, 1))  # overlapping in w, padded


def _const_like(array, node):
    return gc.constant(array.astype(node.dtype))


CONV_CASES: list[Case] = [
    Case("conv2d", lambda x, w: gc.conv2d(x, w), (In((2, 3, 5, 6)), In((4, 3, 3, 3))),
         conv2d_loops),
    Case("conv2d_stride_pad_bias",
         lambda x, w, b: gc.conv2d(x, w, b, stride=(2, 1), padding=(1, 2)),
         (In((1, 2, 6, 5)), In((3, 2, 3, 2)), In((3,))),
         lambda x, w, b: conv2d_loops(x, w, (2, 1), (1, 2)) + b[:, None, None]),
    Case("conv2d_stride_leaves_rows", lambda x, w: gc.conv2d(x, w, stride=3, padding=1),
         (In((1, 2, 7, 6)), In((2, 2, 2, 3))),
         lambda x, w: conv2d_loops(x, w, (3, 3), (1, 1))),
    Case("conv2d_symbolic_batch", lambda x, w: gc.conv2d(x, w, padding=1),
         (In(("N", 2, 4, 3)), In((2, 2, 3, 3))),
         lambda x, w: conv2d_loops(x, w, (1, 1), (1, 1)), bindings={"N": 2}),
    Case("conv2d_grad_input",
         lambda g, w: _op("conv2d_grad_input", g, w, input_shape=(6, 5), stride=(2, 1),
                          padding=(1, 0)),
         (In((2, 3, 3, 4)), In((3, 2, 3, 2))),
         lambda g, w: conv2d_grad_input_loops(g, w, (6, 5), (2, 1), (1, 0))),
    Case("conv2d_grad_weight",
         lambda x, g: _op("conv2d_grad_weight", x, g, kernel=(2, 3), stride=(1, 2),
                          padding=(0, 1)),
         (In((2, 2, 4, 5)), In((2, 3, 3, 3))),
         lambda x, g: conv2d_grad_weight_loops(x, g, (2, 3), (1, 2), (0, 1))),
    Case("conv1d", lambda x, w, b: gc.conv1d(x, w, b, stride=2, padding=1),
         (In((2, 3, 7)), In((4, 3, 3)), In((4,))),
         lambda x, w, b: conv1d_loops(x, w, 2, 1) + b[:, None]),
    Case("fused_conv1d", lambda x, w, b: optimized(gc.relu(gc.conv1d(x, w, b, padding=2))),
         (In((2, 2, 5)), In((3, 2, 4)), In((3,))),
         lambda x, w, b: np.maximum(conv1d_loops(x, w, 1, 2) + b[:, None], 0)),
    Case("max_pool2d", lambda x: gc.max_pool2d(x, 2), (In((2, 2, 4, 6), kind="distinct"),),
         lambda x: max_pool2d_loops(x, (2, 2), (2, 2))),
    Case("max_pool2d_overlap_pad", lambda x: gc.max_pool2d(x, 3, stride=2, padding=1),
         (In((1, 2, 5, 6), kind="distinct"),),
         lambda x: max_pool2d_loops(x, (3, 3), (2, 2), (1, 1))),
    Case("max_pool2d_grad",
         lambda g: _op("max_pool2d_grad", _const_like(_X_POOL, g), g, **_MP),
         (In((2, 2, 3, 7)),),
         lambda g: max_pool2d_grad_loops(_X_POOL, g, (3, 2), (2, 1), (1, 1))),
    Case("max_pool2d_gather",
         lambda h: _op("max_pool2d_gather", _const_like(_X_POOL, h), h, **_MP),
         (In((2, 2, 5, 6)),),
         lambda h: max_pool2d_gather_loops(_X_POOL, h, (3, 2), (2, 1), (1, 1))),
    Case("avg_pool2d", lambda x: gc.avg_pool2d(x, (2, 3)), (In((2, 2, 4, 6)),),
         lambda x: avg_pool2d_loops(x, (2, 3), (2, 3))),
    Case("avg_pool2d_overlap_pad", lambda x: gc.avg_pool2d(x, 3, stride=2, padding=1),
         (In((1, 2, 5, 6)),), lambda x: avg_pool2d_loops(x, (3, 3), (2, 2), (1, 1))),
    Case("avg_pool2d_grad",
         lambda g: _op("avg_pool2d_grad", g, input_shape=(5, 6), kernel=(3, 3),
                       stride=(2, 2), padding=(1, 1)),
         (In((1, 2, 3, 3)),),
         lambda g: avg_pool2d_grad_loops(g, (5, 6), (3, 3), (2, 2), (1, 1))),
]


# ----- gradients against central differences at sampled coordinates ----------------------------
def sampled_gradient_check(build, arrays, wrt=None, samples: int = 10, seed: int = 0,
                           eps: float = 1e-6, rtol: float = 1e-6, atol: float = 1e-7):
    """Compare gc.grad of the scalar build(*inputs) with central differences in float64 at
    `samples` random coordinates of each input in `wrt` (positions; all inputs by default).

    Returns the compiled gradient's values so callers can check more about them."""
    arrays = [np.asarray(a, np.float64) for a in arrays]
    nodes = [gc.input(f"a{k}", a.shape, "float64") for k, a in enumerate(arrays)]
    loss = build(*nodes)
    wrt = range(len(arrays)) if wrt is None else wrt
    grads = gc.grad(loss, [nodes[k] for k in wrt])
    loss_fn = gc.compile(nodes, loss, backend="numpy")
    analytic = gc.compile(nodes, grads, backend="numpy")(*arrays)
    rng = np.random.default_rng(seed)
    for k, g in zip(wrt, analytic, strict=True):
        base = arrays[k]
        picks = rng.choice(base.size, size=min(samples, base.size), replace=False)
        for flat in picks:
            idx = np.unravel_index(flat, base.shape)
            moved = []
            for step in (eps, -eps):
                shifted = base.copy()
                shifted[idx] += step
                moved.append(float(loss_fn(*arrays[:k], shifted, *arrays[k + 1:])))
            numeric = (moved[0] - moved[1]) / (2 * eps)
            np.testing.assert_allclose(g[idx], numeric, rtol=rtol, atol=atol,
                                       err_msg=f"d loss / d input {k} at {idx}")
    return analytic
