"""Op-table rows for convolution and pooling, with expectations computed by direct loops
over output positions (independent of graphc's im2col references). The loop references
are reused by tests/ops/test_conv.py and test_pool.py."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

import graphc as gc
from tests.ops.harness import Case, In, optimized


def _pad(x, padding, fill=0.0):
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def conv2d_loops(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                 mode="constant"):
    """out[n, o, i, j] = sum over (c in o's group, a, b) of
    xpad[n, c, i*sh + a*dh, j*sw + b*dw] * w[o, c, a, b]; padding (h, w) or
    ((top, bottom), (left, right)), by np.pad's `mode`."""
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    pads = [p if isinstance(p, tuple) else (p, p) for p in padding]
    xp = np.pad(x, ((0, 0), (0, 0), *pads), mode=mode)
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    out = np.zeros((n, o, ho, wo), np.result_type(x, w))
    for b in range(n):
        for f in range(o):
            c0 = (f // og) * cg
            for i in range(ho):
                for j in range(wo):
                    window = xp[b, c0:c0 + cg, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                                j * sw:j * sw + dw * (kw - 1) + 1:dw]
                    out[b, f, i, j] = np.sum(window * w[f])
    return out


def conv_transpose2d_loops(x, w, stride, padding, output_padding, dilation, groups):
    """Each x[n, c, i, j] * w[c, o] added at rows i*s - p + a*d, columns j*s - p + b*d of
    the output channels of c's group (PyTorch's transposed convolution, by scattering)."""
    n, cin, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (ph, pw), (eh, ew), (dh, dw) = stride, padding, output_padding, dilation
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + eh + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + ew + 1
    cg = cin // groups
    full = np.zeros((n, og * groups, ho + 2 * ph + dh * kh + sh, wo + 2 * pw + dw * kw + sw))
    for b in range(n):
        for c in range(cin):
            o0 = (c // cg) * og
            for i in range(h):
                for j in range(wd):
                    for a in range(kh):
                        for d in range(kw):
                            full[b, o0:o0 + og, i * sh + a * dh, j * sw + d * dw] += \
                                x[b, c, i, j] * w[c, :, a, d]
    return full[:, :, ph:ph + ho, pw:pw + wo]


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


def _pool_size(size, k, s, p, d, ceil_mode):
    """PyTorch's rule, window by window (padded coordinates, the input at [p, p + size)):
    a window fits in the padded input; with ceil_mode, one more may hang over its end if
    the one before it does not reach the end and it starts inside the input or its left
    padding."""
    length, extent = size + 2 * p, d * (k - 1) + 1
    out = 0
    while True:
        start = out * s
        if ceil_mode:
            ok = out == 0 or (start - s + extent < length and start < size + p)
        else:
            ok = start + extent <= length
        if not ok:
            return out
        out += 1


def pool_loops(x, kernel, stride, padding, dilation=(1, 1), ceil_mode=False, kind="max",
               count_include_pad=True, divisor=None):
    """Max or average pooling window by window: each window's taps inside the input; the
    average's divisor counts the taps inside the padded input [-p, size + p) (or inside
    the input), unless `divisor` is given."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho = _pool_size(h, kh, sh, ph, dh, ceil_mode)
    wo = _pool_size(w, kw, sw, pw, dw, ceil_mode)
    out = np.zeros((n, c, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            rows = [i * sh - ph + a * dh for a in range(kh)]
            cols = [j * sw - pw + b * dw for b in range(kw)]
            inside_r = [r for r in rows if 0 <= r < h]
            inside_c = [q for q in cols if 0 <= q < w]
            values = x[:, :, inside_r][:, :, :, inside_c]
            if kind == "max":
                out[:, :, i, j] = values.max(axis=(2, 3))
                continue
            if divisor is not None:
                count = divisor
            elif count_include_pad:
                count = ((min(rows[0] + kh, h + ph) - rows[0]) *
                         (min(cols[0] + kw, w + pw) - cols[0]))
            else:
                count = len(inside_r) * len(inside_c)
            out[:, :, i, j] = values.sum(axis=(2, 3)) / count
    return out


def adaptive_pool_loops(x, out_hw, kind):
    """Window (i, j) covers rows floor(i H / Ho) .. ceil((i + 1) H / Ho) - 1, likewise
    columns; its max or mean."""
    n, c, h, w = x.shape
    ho, wo = out_hw
    out = np.zeros((n, c, ho, wo), x.dtype)
    for i in range(ho):
        r0, r1 = math.floor(i * h / ho), math.ceil((i + 1) * h / ho)
        for j in range(wo):
            c0, c1 = math.floor(j * w / wo), math.ceil((j + 1) * w / wo)
            window = x[:, :, r0:r1, c0:c1]
            out[:, :, i, j] = window.max(axis=(2, 3)) if kind == "max" else \
                window.sum(axis=(2, 3)) / window[0, 0].size
    return out


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
_MP = dict(kernel=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 1),
           ceil_mode=False)  # overlapping in w, padded
_PLAIN = dict(dilation=(1, 1), groups=1)
_X_ADAPT = np.random.default_rng(6).permutation(2 * 2 * 7 * 5).reshape(2, 2, 7, 5) * 0.1


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
                          padding=(1, 0), **_PLAIN),
         (In((2, 3, 3, 4)), In((3, 2, 3, 2))),
         lambda g, w: conv2d_grad_input_loops(g, w, (6, 5), (2, 1), (1, 0))),
    Case("conv2d_grad_weight",
         lambda x, g: _op("conv2d_grad_weight", x, g, kernel=(2, 3), stride=(1, 2),
                          padding=(0, 1), **_PLAIN),
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
                       stride=(2, 2), padding=(1, 1), ceil_mode=False, count_include_pad=True,
                       divisor_override=None),
         (In((1, 2, 3, 3)),),
         lambda g: avg_pool2d_grad_loops(g, (5, 6), (3, 3), (2, 2), (1, 1))),
    # ----- groups, dilation, padding forms, transposed convolutions (issue 16) -----
    Case("conv2d_groups_dilation",
         lambda x, w, b: gc.conv2d(x, w, b, stride=(1, 2), padding=(2, 1), dilation=(2, 1),
                                   groups=2),
         (In((2, 4, 7, 6)), In((6, 2, 3, 2)), In((6,))),
         lambda x, w, b: conv2d_loops(x, w, (1, 2), (2, 1), (2, 1), 2) + b[:, None, None]),
    Case("conv2d_depthwise_same_even_kernel",  # the odd padding pixel: bottom and right
         lambda x, w: gc.conv2d(x, w, padding="same", groups=3),
         (In((1, 3, 5, 6)), In((6, 1, 2, 4))),
         lambda x, w: conv2d_loops(x, w, padding=((0, 1), (1, 2)), groups=3)),
    Case("conv2d_padding_mode_reflect",
         lambda x, w: gc.conv2d(x, w, stride=2, padding=(2, 1), padding_mode="reflect"),
         (In((1, 2, 5, 6)), In((3, 2, 3, 3))),
         lambda x, w: conv2d_loops(x, w, (2, 2), (2, 1), mode="reflect")),
    Case("conv1d_groups_dilation",
         lambda x, w, b: gc.conv1d(x, w, b, stride=2, padding=3, dilation=2, groups=2),
         (In((2, 4, 9)), In((6, 2, 3)), In((6,))),
         lambda x, w, b: conv2d_loops(x[:, :, None], w[:, :, None], (1, 2), (0, 3), (1, 2),
                                      2)[:, :, 0] + b[:, None]),
    Case("conv_transpose2d",
         lambda x, w, b: gc.conv_transpose2d(x, w, b, stride=(2, 1), padding=1,
                                             output_padding=(1, 0), groups=2, dilation=(1, 2)),
         (In((2, 4, 3, 4)), In((4, 3, 3, 2)), In((6,))),
         lambda x, w, b: conv_transpose2d_loops(x, w, (2, 1), (1, 1), (1, 0), (1, 2), 2)
         + b[:, None, None]),
    Case("conv_transpose1d",  # output_padding of the stride (below the dilation)
         lambda x, w: gc.conv_transpose1d(x, w, stride=2, padding=1, output_padding=2,
                                          dilation=3),
         (In((1, 2, 4)), In((2, 3, 3))),
         lambda x, w: F.conv_transpose1d(torch.tensor(x), torch.tensor(w), stride=2, padding=1,
                                         output_padding=2, dilation=3).numpy()),
    Case("pad_reflect_replicate",  # torch's order: last axis first; negative pads crop
         lambda x: gc.pad(x, (1, 2, 2, 0), mode="reflect")
         + gc.pad(x, (2, 1, -1, 3), mode="replicate"),
         (In((2, 3, 4, 5)),),
         lambda x: np.pad(x, ((0, 0), (0, 0), (2, 0), (1, 2)), mode="reflect")
         + np.pad(x[:, :, 1:], ((0, 0), (0, 0), (0, 3), (2, 1)), mode="edge")),
    Case("pad_circular_constant",
         lambda x: gc.pad(x, (3, 1, 1, 2), mode="circular") * gc.pad(x, (2, 2, 3, 0),
                                                                      value=0.5),
         (In((2, 3, 4)),),
         lambda x: np.pad(x, ((0, 0), (1, 2), (3, 1)), mode="wrap")
         * np.pad(x, ((0, 0), (3, 0), (2, 2)), constant_values=0.5)),
    Case("max_pool2d_dilation_ceil",
         lambda x: gc.max_pool2d(x, (3, 2), stride=2, padding=1, dilation=(2, 1),
                                 ceil_mode=True),
         (In((2, 2, 8, 7), kind="distinct"),),
         lambda x: pool_loops(x, (3, 2), (2, 2), (1, 1), (2, 1), True)),
    Case("avg_pool2d_ceil_exclude_pad",
         lambda x: gc.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                 count_include_pad=False)
         + gc.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
         (In((2, 2, 6, 8)),),
         lambda x: pool_loops(x, (3, 3), (2, 2), (1, 1), ceil_mode=True, kind="avg",
                              count_include_pad=False)
         + pool_loops(x, (3, 3), (2, 2), (1, 1), ceil_mode=True, kind="avg")),
    Case("pool1d",
         lambda x: gc.max_pool1d(x, 2, stride=2, padding=1, dilation=2, ceil_mode=True)
         + gc.avg_pool1d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
         (In((2, 3, 9), kind="distinct"),),
         lambda x: F.max_pool1d(torch.tensor(x), 2, stride=2, padding=1, dilation=2,
                                ceil_mode=True).numpy()
         + F.avg_pool1d(torch.tensor(x), 3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False).numpy()),
    Case("adaptive_avg_pool2d", lambda x: gc.adaptive_avg_pool2d(x, (3, 4)),
         (In((2, 2, 7, 5)),), lambda x: adaptive_pool_loops(x, (3, 4), "avg")),
    Case("adaptive_max_pool2d", lambda x: gc.adaptive_max_pool2d(x, (3, 4)),
         (In((2, 2, 7, 5), kind="distinct"),), lambda x: adaptive_pool_loops(x, (3, 4), "max")),
    Case("adaptive_max_pool2d_grad",  # its gradient is adaptive_max_pool2d_gather
         lambda g: _op("adaptive_max_pool2d_grad", _const_like(_X_ADAPT, g), g,
                       output_size=(3, 4)),
         (In((2, 2, 3, 4)),),
         lambda g: _adaptive_max_grad(_X_ADAPT, g, (3, 4))),
]


def _adaptive_max_grad(x, g, out_hw):
    """g of each adaptive window added at its maximum (x's values are distinct)."""
    n, c, h, w = x.shape
    ho, wo = out_hw
    out = np.zeros(x.shape)
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                r0, r1 = math.floor(i * h / ho), math.ceil((i + 1) * h / ho)
                for j in range(wo):
                    c0, c1 = math.floor(j * w / wo), math.ceil((j + 1) * w / wo)
                    window = x[b, ch, r0:r1, c0:c1]
                    a, d = np.unravel_index(np.argmax(window), window.shape)
                    out[b, ch, r0 + a, c0 + d] += g[b, ch, i, j]
    return out


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
