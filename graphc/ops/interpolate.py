"""interpolate: PyTorch's torch.nn.functional.interpolate for resizing (upsampling, and
downsampling without antialiasing) over the spatial axes of (N, C, *spatial) inputs.

Separable, one spatial axis at a time, composed of `take` with constant indices (a gather
kernel; its gradient, a scatter-add, comes with it) and, for the linear modes, weights
that mix two neighbours: "nearest" and "nearest-exact" (3-, 4- and 5-D inputs), "linear"
(3-D), "bilinear" (4-D), "trilinear" (5-D), with align_corners. Source positions are
computed as PyTorch computes them (float32 for the nearest modes, whose floor must land
where PyTorch's does)."""

from __future__ import annotations

import math

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.arguments import require_float, static_dim, values
from graphc.ops.shape import reshape
from graphc.shapes import shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "interpolate",
]

LINEAR_RANKS = {"linear": 3, "bilinear": 4, "trilinear": 5}
MODES = ("nearest", "nearest-exact", *LINEAR_RANKS)


def _per_axis(name: str, value, count: int) -> tuple:
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,) * count
    if len(items) != count:
        raise build_error("interpolate", f"{name} needs {count} entries (one per spatial axis), "
                          f"got {list(items)}")
    return items


def _scale(n_in: int, n_out: int, factor) -> float:
    """PyTorch's compute_scales_value: 1/scale_factor when it is given, else in/out."""
    return 1.0 / factor if factor is not None and factor > 0 else n_in / n_out


def nearest_sources(n_in: int, n_out: int, factor, exact: bool) -> np.ndarray:
    """The input position each output position copies (PyTorch's nearest_idx and
    nearest_neighbor_exact_compute_source_index, in float32 as it computes them)."""
    dst = np.arange(n_out, dtype=np.float32)
    if not exact and n_out == n_in:
        return np.arange(n_out, dtype=np.int64)
    if not exact and n_out == 2 * n_in:
        return np.arange(n_out, dtype=np.int64) >> 1
    scale = np.float32(_scale(n_in, n_out, factor))
    position = (dst + np.float32(0.5)) * scale if exact else dst * scale
    return np.minimum(np.floor(position).astype(np.int64), n_in - 1)


def linear_sources(n_in: int, n_out: int, factor, align_corners: bool):
    """(lower neighbours, upper neighbours, weight of the upper) per output position, as
    PyTorch's area_pixel_compute_source_index."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        source = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        source = np.maximum(_scale(n_in, n_out, factor) * (dst + 0.5) - 0.5, 0.0)
    lower = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    upper = np.where(lower < n_in - 1, lower + 1, lower)
    return lower, upper, source - lower


def _along(x: Node, axis: int, index: np.ndarray) -> Node:
    (ids,) = values("interpolate", index)
    return Node.make("take", (x, ids), axis=axis, caller="interpolate")


def _weights(w: np.ndarray, axis: int, rank: int, dtype) -> Node:
    shape = tuple(-1 if a == axis else 1 for a in range(rank))
    (node,) = values("interpolate", w.reshape(shape).astype(dtype))
    return node


def interpolate(x, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Node:
    """torch.nn.functional.interpolate over the spatial axes of an (N, C, *spatial) float
    input: give `size` (output sizes) or `scale_factor` (output = floor(input * factor))."""
    (x,) = values("interpolate", x)
    require_float("interpolate", x)
    if mode not in MODES:
        raise build_error("interpolate", f"mode must be one of {MODES}, got {mode!r}")
    if antialias:
        raise build_error("interpolate", "antialias=True is not supported")
    linear = mode in LINEAR_RANKS
    if linear and x.ndim != LINEAR_RANKS[mode]:
        raise build_error("interpolate", f"mode '{mode}' needs a {LINEAR_RANKS[mode]}-D input "
                          f"(N, C, ...), got {shape_str(x.shape)}")
    if not 3 <= x.ndim <= 5:
        raise build_error("interpolate", f"needs a 3-, 4- or 5-D input (N, C, ...), got "
                          f"{shape_str(x.shape)}")
    if align_corners is not None and not linear:
        raise build_error("interpolate", "align_corners can only be set with the linear modes "
                          "(linear, bilinear, trilinear)")
    if (size is None) == (scale_factor is None):
        raise build_error("interpolate", "give size or scale_factor, exactly one")
    spatial = x.ndim - 2
    n_in = [static_dim("interpolate", x, 2 + a, "interpolate needs the spatial sizes")
            for a in range(spatial)]
    if size is not None:
        n_out = list(_per_axis("size", size, spatial))
        factors = (None,) * spatial
    else:
        factors = _per_axis("scale_factor", scale_factor, spatial)
        for f in factors:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not f > 0:
                raise build_error("interpolate", f"scale_factor must be positive, got {f!r}")
        n_out = [math.floor(n * float(f)) for n, f in zip(n_in, factors)]
        if recompute_scale_factor:
            factors = (None,) * spatial
    for n in n_out:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise build_error("interpolate", f"output sizes must be positive ints, got {n_out}")
    out = x
    for a, (m, n, f) in enumerate(zip(n_in, n_out, factors)):
        axis = 2 + a
        if m == n and (f is None or f == 1):
            continue
        if not linear:
            out = _along(out, axis, nearest_sources(m, int(n), f, mode == "nearest-exact"))
            continue
        lower, upper, weight = linear_sources(m, int(n), f, bool(align_corners))
        low, high = _along(out, axis, lower), _along(out, axis, upper)
        dtype = dtypes.as_dtype(x.dtype)
        out = low * _weights(1.0 - weight, axis, x.ndim, dtype) + high * _weights(
            weight, axis, x.ndim, dtype)
    return out if out is not x else reshape(x, x.shape)
