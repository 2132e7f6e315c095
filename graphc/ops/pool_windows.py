"""Where pooling windows lie, as PyTorch places them, for the pooling ops' shape rules and
NumPy references.

A window is the product of one window per axis; an axis's window for output i is a list
of taps (input positions), some of which may lie outside the input (padding, ceil_mode's
last window). Two kinds:
- regular (max_pool2d, avg_pool2d): taps i * stride - padding + t * dilation, t < kernel;
  with ceil_mode the output size rounds up, but the last window must start inside the
  input or its left padding.
- adaptive (adaptive_*_pool2d): taps floor(i * H / O) <= h < ceil((i + 1) * H / O).
Per axis and output index the references get the taps (clipped into the input), which of
them lie inside, and avg pooling's divisor share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from graphc.errors import build_error
from graphc.ops.conv import pair, span
from graphc.shapes import Dim, as_dim, shape_str


@dataclass(frozen=True)
class Pooling:
    """The typed view of a regular pool's attributes (`Pooling.of(node)`): kernel, stride,
    padding, dilation ((h, w) pairs), ceil_mode; avg pooling's count_include_pad and
    divisor_override (None: the window's count)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None

    @classmethod
    def of(cls, node) -> Pooling:
        return cls.of_attrs(node.attrs)

    @classmethod
    def of_attrs(cls, a: dict) -> Pooling:
        return cls(a["kernel"], a["stride"], a["padding"], a.get("dilation", (1, 1)),
                   a.get("ceil_mode", False), a.get("count_include_pad", True),
                   a.get("divisor_override"))


MAX_ATTRS = ("kernel", "stride", "padding", "dilation", "ceil_mode")
AVG_ATTRS = ("kernel", "stride", "padding", "ceil_mode", "count_include_pad",
             "divisor_override")


def check_attrs(op: str, attrs: dict, names) -> Pooling:
    """Refuse missing or malformed attributes (nodes built without the DSL functions)."""
    for name in names:
        if name not in attrs:
            raise build_error(op, f"the {name} attribute is missing")
    for name, minimum in (("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1)):
        if name in names:
            pair(op, name, attrs[name], minimum)
    for name in ("ceil_mode", "count_include_pad"):
        if name in names and not isinstance(attrs[name], bool):
            raise build_error(op, f"{name} must be a bool, got {attrs[name]!r}")
    override = attrs.get("divisor_override")
    if override is not None and (not isinstance(override, int) or isinstance(override, bool)
                                 or override == 0):
        raise build_error(op, f"divisor_override must be a nonzero int or None, got "
                          f"{override!r}")
    p = Pooling(**{k: attrs[k] for k in names})
    if any(pd > k // 2 for pd, k in zip(p.padding, p.kernel, strict=True)):
        raise build_error(op, f"padding {p.padding} must be at most half the kernel "
                          f"{p.kernel}")
    return p


def pool_size(dim: Dim, k: int, s: int, p: int, d: int, ceil_mode: bool) -> Dim:
    """PyTorch's pooling output size along one axis: floor (or ceil) of
    (dim + 2p - span) / s, plus 1; with ceil_mode, one less if the last window would
    start past the input and its left padding."""
    extent = span(k, d)
    if isinstance(dim, int):
        top = dim + 2 * p - extent + (s - 1 if ceil_mode else 0)
        out = top // s + 1
        if ceil_mode and (out - 1) * s >= dim + p:
            out -= 1
        return out
    s_ = sympy.Integer(s)
    out = sympy.floor((dim + 2 * p - extent + (s - 1 if ceil_mode else 0)) / s_) + 1
    if ceil_mode:  # at most one less (padding is at most half the kernel)
        out = sympy.Min(out, sympy.floor((dim + p - 1) / s_) + 1)
    return as_dim(out)


def regular_hw(op: str, shape, p: Pooling) -> tuple[Dim, Dim]:
    """The output (H, W) of a regular pool over an NCHW shape; refuses empty inputs and
    windows larger than the padded input where sizes are known."""
    sizes = []
    for axis in range(2):
        dim = shape[2 + axis]
        k, s, pd, d = p.kernel[axis], p.stride[axis], p.padding[axis], p.dilation[axis]
        if isinstance(dim, int) and dim == 0:
            raise build_error(op, f"the input's height and width must be nonzero, got "
                              f"{shape_str(shape)}")
        if isinstance(dim, int) and dim + 2 * pd < span(k, d):
            raise build_error(op, f"kernel {p.kernel[0]}x{p.kernel[1]}"
                              f"{_dilated(p.dilation)} is larger than the padded input: "
                              f"{shape_str(shape)} with padding {p.padding}")
        sizes.append(pool_size(dim, k, s, pd, d, p.ceil_mode))
    return tuple(sizes)


def _dilated(dilation) -> str:
    return "" if tuple(dilation) == (1, 1) else f" with dilation {tuple(dilation)}"


# ----- per-axis windows, concrete ----------------------------------------------------------------
@dataclass(frozen=True)
class AxisWindows:
    """One axis's windows: taps (out, k) input positions clipped into [0, size), inside
    (out, k) whether each lies in the input, count (out,) avg pooling's divisor share."""

    taps: np.ndarray
    inside: np.ndarray
    count: np.ndarray


def regular_axis(size: int, out: int, k: int, s: int, p: int, d: int,
                 include_pad: bool) -> AxisWindows:
    """A regular pool's windows along one axis. The divisor share counts the taps inside
    the input, or with include_pad those inside the padded input [-p, size + p) (PyTorch's
    avg pooling, which has no dilation)."""
    starts = np.arange(out) * s - p
    taps = starts[:, None] + np.arange(k)[None, :] * d
    inside = (taps >= 0) & (taps < size)
    if include_pad:
        count = np.minimum(starts + k, size + p) - starts
    else:
        count = np.minimum(starts + k, size) - np.maximum(starts, 0)
    return AxisWindows(np.clip(taps, 0, size - 1), inside, count)


def adaptive_bounds(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of each adaptive window: floor(i * size / out), ceil((i + 1) * size / out)."""
    i = np.arange(out)
    return i * size // out, -(-(i + 1) * size // out)


def adaptive_axis(size: int, out: int) -> AxisWindows:
    start, end = adaptive_bounds(size, out)
    width = int((end - start).max())
    taps = start[:, None] + np.arange(width)[None, :]
    inside = taps < end[:, None]
    return AxisWindows(np.minimum(taps, size - 1), inside, end - start)


def adaptive_width(size: int, out: int) -> int:
    """The widest adaptive window along an axis."""
    start, end = adaptive_bounds(size, out)
    return int((end - start).max())


# ----- the references, over the windows of both axes -------------------------------------------
def gather(x: np.ndarray, rows: AxisWindows, cols: AxisWindows, fill) -> np.ndarray:
    """(N, C, Ho, Wo, kh, kw): every window's taps, `fill` outside the input."""
    values = x[:, :, rows.taps[:, None, :, None], cols.taps[None, :, None, :]]
    inside = rows.inside[:, None, :, None] & cols.inside[None, :, None, :]
    return np.where(inside, values, x.dtype.type(fill))


def window_max(x, rows, cols) -> np.ndarray:
    """The max of each window (padding -inf; NaN propagates), taps in row-major order."""
    values = gather(x, rows, cols, -np.inf)
    out = values[..., 0, 0].copy()
    for a in range(values.shape[-2]):
        for b in range(values.shape[-1]):
            if a or b:
                np.maximum(out, values[..., a, b], out=out)
    return out


def first_max_index(x: np.ndarray, rows: AxisWindows, cols: AxisWindows) -> np.ndarray:
    """For every output (N, C, Ho, Wo), the flat index into x of its window's first maximum
    (row-major tap order, a NaN counting as the maximum, ties to the first). A window whose
    values inside are all -inf ties with its padding: PyTorch takes its first tap inside."""
    n, c, h, w = x.shape
    values = gather(x, rows, cols, -np.inf)
    kh, kw = values.shape[-2:]
    best = values[..., 0, 0].copy()
    arg = np.zeros(best.shape, np.intp)
    for t in range(1, kh * kw):
        value = values[..., t // kw, t % kw]
        better = (value > best) | (np.isnan(value) & ~np.isnan(best))
        np.copyto(best, value, where=better)
        np.copyto(arg, t, where=better)
    a, b = arg // kw, arg % kw
    ho, wo = best.shape[2:]
    i, j = np.arange(ho)[:, None], np.arange(wo)[None, :]
    inside = rows.inside[i, a] & cols.inside[j, b]
    first_a, first_b = rows.inside.argmax(axis=1), cols.inside.argmax(axis=1)
    a = np.where(inside, a, first_a[i])
    b = np.where(inside, b, first_b[j])
    plane = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
    return plane + rows.taps[i, a] * w + cols.taps[j, b]


def scatter_add(index: np.ndarray, values: np.ndarray, shape, dtype) -> np.ndarray:
    """Zeros of `shape` with values added at flat indices (repeats accumulate)."""
    total = int(np.prod(shape, dtype=np.int64))
    out = np.bincount(index.ravel(), weights=values.ravel(), minlength=total)
    return out.astype(dtype, copy=False).reshape(shape)


def divisor(rows: AxisWindows, cols: AxisWindows, override) -> np.ndarray:
    """(Ho, Wo) divisors of avg pooling: the product of the axes' shares, or the override."""
    if override is not None:
        return np.full((rows.count.size, cols.count.size), override)
    return rows.count[:, None] * cols.count[None, :]


def window_mean(x: np.ndarray, rows, cols, override) -> np.ndarray:
    """Each window's sum (taps in row-major order, zeros outside) over its divisor."""
    values = gather(x, rows, cols, 0)
    total = values[..., 0, 0].copy()
    for a in range(values.shape[-2]):
        for b in range(values.shape[-1]):
            if a or b:
                total += values[..., a, b]
    return total / divisor(rows, cols, override).astype(x.dtype)


def spread_mean(g: np.ndarray, shape, rows, cols, override) -> np.ndarray:
    """The adjoint of window_mean: each g / divisor added at its window's taps inside."""
    n, c, h, w = shape
    share = g / divisor(rows, cols, override).astype(g.dtype)
    kh, kw = rows.taps.shape[1], cols.taps.shape[1]
    ho, wo = g.shape[2:]
    index = (rows.taps[:, None, :, None] * w + cols.taps[None, :, None, :])  # Ho Wo kh kw
    inside = rows.inside[:, None, :, None] & cols.inside[None, :, None, :]
    plane = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1, 1, 1)
    weights = np.where(inside, share[..., None, None], 0)
    flat = plane + np.broadcast_to(index, (ho, wo, kh, kw))
    return scatter_add(flat, weights, shape, g.dtype)
