"""A convolution's padding argument as PyTorch takes it (an int, a pair, per-side pairs,
"valid", "same"; padding_mode "zeros", "reflect", "replicate" or "circular") turned into
what the convolution ops take: symmetric zero padding, with a `pad` op in front of the
convolution for the rest (another mode, or the odd pixel of an asymmetric padding: PyTorch
pads the same way)."""

from __future__ import annotations

import numpy as np

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.pad import check_fits, pad

PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                 "circular": "circular"}


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def per_axis(op: str, padding, kernel, stride, dilation) -> list[tuple[int, int]]:
    """(before, after) zero padding per spatial axis. "same" pads dilation * (k - 1) in
    all, the odd one after (PyTorch's rule), and needs stride 1."""
    ndim = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * ndim
        if padding != "same":
            raise build_error(op, f"padding must be an int, a tuple, 'valid' or 'same', got "
                              f"{padding!r}")
        if any(s != 1 for s in stride):
            raise build_error(op, f"padding='same' needs stride 1 (PyTorch does not support "
                              f"it for strided convolutions), got stride {tuple(stride)}")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return [(t // 2, t - t // 2) for t in totals]
    items = [padding] * ndim if _is_int(padding) else padding
    described = "an int, a (before, after) pair" if ndim == 1 else \
        "an int, an (h, w) pair, a pair of (before, after) pairs"
    wrong = build_error(op, f"padding must be {described}, 'valid' or 'same', got "
                        f"{padding!r}")
    if not isinstance(items, (tuple, list)) or len(items) != ndim:
        raise wrong
    pairs = []
    for item in items:
        if _is_int(item):
            item = (item, item)
        if not isinstance(item, (tuple, list)) or len(item) != 2 or not all(
                _is_int(v) for v in item):
            raise wrong
        pairs.append((int(item[0]), int(item[1])))
    if any(v < 0 for p in pairs for v in p):
        raise build_error(op, f"padding must be at least 0, got {padding!r}")
    return pairs


def apply(op: str, x: Node, kernel, padding, padding_mode: str, stride, dilation):
    """(x, padding): x with any padding the op cannot take done by a pad op, and the
    symmetric zero padding (a tuple, one per spatial axis) left for the op."""
    if padding_mode not in PADDING_MODES:
        raise build_error(op, f"padding_mode must be one of {', '.join(PADDING_MODES)}, got "
                          f"{padding_mode!r}")
    pairs = per_axis(op, padding, kernel, stride, dilation)
    spatial = x.shape[x.ndim - len(pairs):]
    if padding_mode == "zeros":
        padding = tuple(min(p) for p in pairs)
        rest = [(a - p, b - p) for (a, b), p in zip(pairs, padding)]
    else:
        padding, rest = (0,) * len(pairs), pairs
        for axis, (dim, (a, b)) in enumerate(zip(spatial, pairs)):
            check_fits(op, PADDING_MODES[padding_mode], dim, a, b,
                       x.ndim - len(pairs) + axis, x.shape)
    if any(a or b for a, b in rest):
        flat = [v for a, b in reversed(rest) for v in (a, b)]
        x = pad(x, flat, mode=PADDING_MODES[padding_mode])
    return x, padding
