"""Padding, PyTorch's torch.nn.functional.pad: constant, reflect, replicate and circular
modes over any axes, pads given last axis first as PyTorch orders them. Negative pads crop
(a slice) before the rest pads, as in PyTorch.

Two ops: `pad` (nonnegative pads) and its adjoint `pad_grad`, which folds each padded
position's gradient back onto the input position it copies. Each is linear and the
other's gradient, so higher derivatives work; both take symbolic dims.
"""

from __future__ import annotations

import numbers

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.ops.leaf import operands
from graphc.ops.shape import getitem
from graphc.shapes import as_shape, dims_equal, shape_str

__all__ = ["pad"]

MODES = ("constant", "reflect", "replicate", "circular")
_NUMPY_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                "circular": "wrap"}


def check_fits(op: str, mode: str, size, before: int, after: int, axis: int,
               shape, error=None) -> None:
    """Refuse pads a mode cannot take on an axis of known `size` (PyTorch's limits):
    reflect needs pads below the size, circular at most the size, and both (with
    replicate) a nonempty axis. `error` is the exception class for sizes known only at
    call time (ValueError); by default a build error."""
    if error is None:
        def error(message):
            return build_error(op, message)
    else:
        error = _prefixed(op, error)
    if mode == "constant" or not isinstance(size, int) or before == after == 0:
        return
    if size == 0:
        raise error(f"{mode} padding needs a nonempty axis {axis}, got shape "
                    f"{shape_str(tuple(shape))}")
    if mode == "reflect" and max(before, after) >= size:
        raise error(f"reflect padding ({before}, {after}) of axis {axis} must be smaller "
                    f"than its size {size} (shape {shape_str(tuple(shape))})")
    if mode == "circular" and max(before, after) > size:
        raise error(f"circular padding ({before}, {after}) of axis {axis} must be at most "
                    f"its size {size} (shape {shape_str(tuple(shape))})")


def _prefixed(op: str, cls):
    return lambda message: cls(f"{op}: {message}")


def _check_attrs(op: str, ndim: int, pads, mode) -> None:
    if mode not in MODES:
        raise build_error(op, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if len(pads) != ndim or not all(
            len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                for v in p) for p in pads):
        raise build_error(op, f"pads must be a nonnegative (before, after) pair per axis of "
                          f"the rank-{ndim} input, got {pads!r}")


def padded_shape(shape, pads) -> tuple:
    return tuple(d + a + b for d, (a, b) in zip(shape, pads, strict=True))


@register_class
class Pad(Op):
    """attrs: pads (a nonnegative (before, after) pair per axis), mode (constant, reflect,
    replicate, circular), value (the constant). x -> x padded, same dtype."""

    name = "pad"

    def infer(self, inputs, attrs):
        (x,) = inputs
        pads, mode = attrs["pads"], attrs["mode"]
        _check_attrs(self.name, x.ndim, pads, mode)
        for axis, (dim, (before, after)) in enumerate(zip(x.shape, pads)):
            check_fits(self.name, mode, dim, before, after, axis, x.shape)
        return x.dtype, padded_shape(x.shape, pads)

    def numpy(self, node, args, env):
        (x,) = args
        pads, mode = node.attrs["pads"], node.attrs["mode"]
        for axis, (dim, (before, after)) in enumerate(zip(x.shape, pads)):
            check_fits(self.name, mode, dim, before, after, axis, x.shape, error=ValueError)
        if mode == "constant":
            return np.pad(x, pads, constant_values=np.array(node.attrs.get("value", 0.0)).astype(
                x.dtype))
        return np.pad(x, pads, mode=_NUMPY_MODES[mode])

    def grad(self, node, out_grad):
        (x,) = node.inputs
        return [Node.make("pad_grad", (out_grad,), pads=node.attrs["pads"],
                          mode=node.attrs["mode"], shape=x.shape)]


def fold_axis(g: np.ndarray, axis: int, before: int, after: int, mode: str) -> np.ndarray:
    """The adjoint of padding one axis: the center of g plus, per mode, the padded
    positions' values added where they were copied from."""
    size = g.shape[axis] - before - after

    def part(start, stop, step=1):
        index = [slice(None)] * g.ndim
        index[axis] = slice(start, stop, step)
        return tuple(index)

    out = g[part(before, before + size)].copy()
    if mode == "reflect":  # out[before - i] came from x[i], out[before + size - 1 + i] too
        out[part(1, before + 1)] += g[part(0, before)][part(None, None, -1)]
        out[part(size - 1 - after, size - 1)] += g[part(before + size, None)][
            part(None, None, -1)]
    elif mode == "replicate":
        out[part(0, 1)] += g[part(0, before)].sum(axis=axis, keepdims=True)
        out[part(size - 1, size)] += g[part(before + size, None)].sum(axis=axis, keepdims=True)
    elif mode == "circular":
        out[part(size - before, size)] += g[part(0, before)]
        out[part(0, after)] += g[part(before + size, None)]
    return out


@register_class
class PadGrad(Op):
    """The gradient of pad: g of the padded shape folded back onto the input's shape,
    each padded position's value added to the input position it copies (constant mode:
    the center alone). attrs: pads, mode (as pad), shape (the input's; may be symbolic)."""

    name = "pad_grad"

    def infer(self, inputs, attrs):
        (g,) = inputs
        shape = as_shape(attrs["shape"])
        pads, mode = attrs["pads"], attrs["mode"]
        _check_attrs(self.name, len(shape), pads, mode)
        expected = padded_shape(shape, pads)
        if g.ndim != len(shape) or not all(dims_equal(a, b) for a, b in zip(expected, g.shape)):
            raise build_error(self.name, f"g of shape {shape_str(g.shape)} is not the padded "
                              f"shape {shape_str(expected)}")
        for axis, (dim, (before, after)) in enumerate(zip(shape, pads)):
            check_fits(self.name, mode, dim, before, after, axis, shape)
        return g.dtype, shape

    def numpy(self, node, args, env):
        (g,) = args
        mode = node.attrs["mode"]
        shape = env.shape(node.shape)
        for axis, (before, after) in enumerate(node.attrs["pads"]):
            check_fits(self.name, mode, shape[axis], before, after, axis, shape,
                       error=ValueError)
            if before or after:
                g = fold_axis(g, axis, before, after, mode)
        return np.ascontiguousarray(g)

    def grad(self, node, out_grad):
        return [Node.make("pad", (out_grad,), pads=node.attrs["pads"], mode=node.attrs["mode"],
                          value=0.0)]


# ----- the user-facing function ------------------------------------------------------------------
def torch_pads(op: str, pad, ndim: int) -> list[tuple[int, int]]:
    """PyTorch's flat pad sequence (last axis first: before, after, then the axis before
    it) as a (before, after) pair per axis of a rank-`ndim` value, in axis order."""
    if not isinstance(pad, (tuple, list)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pad):
        raise build_error(op, f"pad must be a sequence of ints, got {pad!r}")
    if len(pad) % 2:
        raise build_error(op, f"pad must have an even length (before, after per axis, last "
                          f"axis first), got {len(pad)}: {tuple(pad)!r}")
    if len(pad) > 2 * ndim:
        raise build_error(op, f"pad {tuple(pad)!r} covers {len(pad) // 2} axes of a rank-"
                          f"{ndim} input")
    pairs = [(0, 0)] * ndim
    for k in range(len(pad) // 2):
        pairs[ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    return pairs


def pad(x, pad, mode: str = "constant", value=None) -> Node:
    """torch.nn.functional.pad: `pad` lists (before, after) pairs from the last axis
    backwards, (left, right, top, bottom) for an image; mode "constant" (fills with
    `value`, default 0), "reflect" (mirrors without repeating the edge, pads below the
    axis's size), "replicate" (repeats the edge) or "circular" (wraps around, pads at
    most the size). Negative pads crop."""
    (x,) = operands(x)
    pairs = torch_pads("pad", pad, x.ndim)
    if mode not in MODES:
        raise build_error("pad", f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "constant" and value is not None:
        raise build_error("pad", f"padding mode {mode!r} doesn't take a value (got "
                          f"{value!r})")
    if value is None:
        value = 0.0
    if not isinstance(value, numbers.Real):
        raise build_error("pad", f"value must be a real number, got {value!r}")
    value = float(value)
    if not dtypes.is_float(x.dtype) and not np.isfinite(value):
        raise build_error("pad", f"value {value} does not fit the {x.dtype.name} input "
                          f"{shape_str(x.shape)}", dtype=True)
    grow = tuple((max(0, a), max(0, b)) for a, b in pairs)
    if mode == "circular":  # PyTorch wraps around the cropped input ...
        x = _crop(x, pairs, x.shape)
        return _padded(x, grow, mode, value)
    # ... but mirrors and repeats the edges of the whole one: pad, then crop.
    return _crop(_padded(x, grow, mode, value), pairs, x.shape)


def _padded(x: Node, grow, mode: str, value: float) -> Node:
    if not any(a or b for a, b in grow):
        return x
    return Node.make("pad", (x,), pads=grow, mode=mode, value=value)


def _crop(x: Node, pairs, shape) -> Node:
    """x without the elements negative pads remove from each end of each axis (x may be
    already padded by the positive ones); `shape` is the unpadded input's."""
    crop = []
    for axis, (dim, (before, after)) in enumerate(zip(x.shape, pairs)):
        if min(before, after) >= 0:
            crop.append(slice(None))
            continue
        if not isinstance(dim, int):
            raise build_error("pad", f"negative pads ({before}, {after}) crop axis {axis}, "
                              f"whose size {dim} is symbolic; crops need static sizes")
        start, stop = max(0, -before), dim - max(0, -after)
        if stop < start:
            raise build_error("pad", f"pads ({before}, {after}) crop more than the size of "
                              f"axis {axis} (shape {shape_str(tuple(shape))})")
        crop.append(slice(start, stop))
    return getitem(x, tuple(crop)) if any(s != slice(None) for s in crop) else x
