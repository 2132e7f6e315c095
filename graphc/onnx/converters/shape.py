"""Shape ONNX ops: Shape and Size (known at import, symbolic dims kept), Reshape, Flatten,
Transpose, Squeeze, Unsqueeze, Concat, Expand, Tile, DepthToSpace and SpaceToDepth. Their
shape inputs must be known at import; on static values (shape subgraphs) they fold."""

from __future__ import annotations

import numpy as np

from graphc.onnx.converters.common import axes_of, axis_of
from graphc.onnx.registry import converter
from graphc.onnx.static import shape_array
from graphc.ops.rearrange import tile
from graphc.ops.shape import broadcast_to, concat, reshape, transpose
from graphc.shapes import broadcast, shape_str, size


@converter("Shape")
def shape(ctx):
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    return shape_array(ctx.shape(0))[start:end]  # Python clamps the ends, as ONNX does


@converter("Size")
def size_(ctx):
    total = size(ctx.shape(0))
    return np.array(total, dtype=np.int64) if isinstance(total, int) else \
        np.array(total, dtype=object)


def reshape_target(ctx, in_shape, target, allowzero: bool) -> list:
    """ONNX's target shape with 0 (copy the input's dim, unless allowzero) resolved."""
    target = list(target)
    for k, d in enumerate(target):
        if isinstance(d, int) and d == 0 and not allowzero:
            if k >= len(in_shape):
                raise ctx.error(f"target shape {tuple(target)}: a 0 at axis {k} copies a dim "
                                f"the input {shape_str(in_shape)} does not have")
            target[k] = in_shape[k]
        elif isinstance(d, int) and d < -1:
            raise ctx.error(f"target shape {tuple(target)} has the invalid dim {d}")
    return target


def _fold_reshape(ctx, statics):
    data, target = statics[0], statics[1]
    if target.dtype == object:
        return None
    dims = reshape_target(ctx, data.shape, [int(v) for v in target], ctx.attr("allowzero", 0))
    return np.reshape(data, dims)


@converter("Reshape", fold=_fold_reshape)
def reshape_(ctx):
    x = ctx.input(0)
    target = reshape_target(ctx, x.shape, ctx.static_dims(1, "target shape"),
                            ctx.attr("allowzero", 0))
    return reshape(x, tuple(target))


@converter("Flatten")
def flatten(ctx):
    x = ctx.input(0)
    axis = ctx.attr("axis", 1)
    if not -x.ndim <= axis <= x.ndim:
        raise ctx.error(f"axis {axis} is out of range for rank {x.ndim}")
    axis = axis + x.ndim if axis < 0 else axis
    return reshape(x, (size(x.shape[:axis]), size(x.shape[axis:])))


@converter("Transpose")
def transpose_(ctx):
    x = ctx.input(0)
    perm = ctx.attr("perm", None)
    if perm is None:
        return transpose(x)
    if sorted(perm) != list(range(x.ndim)):
        raise ctx.error(f"perm {perm} is not a permutation of the {x.ndim} axes of "
                        f"{shape_str(x.shape)}")
    return transpose(x, tuple(perm))


def _squeeze_axes(ctx, shape) -> tuple[int, ...]:
    axes = ctx.static_ints(1, "axes", None) if ctx.opset >= 13 else ctx.attr("axes")
    if axes is None:
        return tuple(k for k, d in enumerate(shape) if isinstance(d, int) and d == 1)
    axes = axes_of(ctx, axes, len(shape))
    for a in axes:
        if shape[a] != 1:
            raise ctx.error(f"axis {a} of {shape_str(shape)} is not 1, it cannot be squeezed")
    return axes


def _fold_squeeze(ctx, statics):
    data = statics[0]
    return np.reshape(data, [d for k, d in enumerate(data.shape)
                             if k not in _squeeze_axes(ctx, data.shape)])


@converter("Squeeze", fold=_fold_squeeze)
def squeeze(ctx):
    x = ctx.input(0)
    axes = _squeeze_axes(ctx, x.shape)
    return reshape(x, tuple(d for k, d in enumerate(x.shape) if k not in axes))


def _unsqueezed(ctx, shape) -> tuple:
    axes = ctx.static_ints(1, "axes")
    rank = len(shape) + len(axes)
    axes = axes_of(ctx, axes, rank)
    rest = iter(shape)
    return tuple(1 if k in axes else next(rest) for k in range(rank))


@converter("Unsqueeze", fold=lambda ctx, statics: np.reshape(
    statics[0], _unsqueezed(ctx, statics[0].shape)))
def unsqueeze(ctx):
    x = ctx.input(0)
    return reshape(x, _unsqueezed(ctx, x.shape))


def _fold_concat(ctx, statics):
    arrays = [s for s in statics if s is not None]
    axis = axis_of(ctx, ctx.attr("axis"), arrays[0].ndim)
    return np.concatenate([a.astype(object) for a in arrays], axis=axis)


@converter("Concat", fold=_fold_concat)
def concat_(ctx):
    values = ctx.inputs()
    if ctx.attr("axis") is None:
        raise ctx.error("the axis attribute is required")
    axis = axis_of(ctx, ctx.attr("axis"), values[0].ndim)
    return concat(values, axis)


@converter("Expand")
def expand(ctx):
    x = ctx.input(0)
    target = ctx.static_dims(1, "shape")
    try:
        out = broadcast(x.shape, target)
    except ValueError:
        raise ctx.error(f"cannot expand {shape_str(x.shape)} to {shape_str(target)}") from None
    return broadcast_to(x, out)


@converter("Tile")
def tile_(ctx):
    x = ctx.input(0)
    repeats = ctx.static_ints(1, "repeats")
    if len(repeats) != x.ndim or any(r < 0 for r in repeats):
        raise ctx.error(f"repeats {repeats} must be {x.ndim} nonnegative ints, one per axis "
                        f"of {shape_str(x.shape)}")
    return tile(x, repeats) if any(r != 1 for r in repeats) else x


def _block_shapes(ctx, x):
    if x.ndim != 4:
        raise ctx.error(f"needs a 4-D (N, C, H, W) input, got {shape_str(x.shape)}")
    block = ctx.attr("blocksize")
    if not isinstance(block, int) or block < 1:
        raise ctx.error(f"blocksize must be a positive int, got {block!r}")
    return block, x.shape


@converter("DepthToSpace")
def depth_to_space(ctx):
    x = ctx.input(0)
    b, (n, c, h, w) = _block_shapes(ctx, x)
    if ctx.attr("mode", "DCR") == "DCR":
        y = reshape(x, (n, b, b, c // (b * b), h, w))
        y = transpose(y, (0, 3, 4, 1, 5, 2))
    else:
        y = reshape(x, (n, c // (b * b), b, b, h, w))
        y = transpose(y, (0, 1, 4, 2, 5, 3))
    return reshape(y, (n, c // (b * b), h * b, w * b))


@converter("SpaceToDepth")
def space_to_depth(ctx):
    x = ctx.input(0)
    b, (n, c, h, w) = _block_shapes(ctx, x)
    y = reshape(x, (n, c, h // b, b, w // b, b))
    if ctx.attr("mode", "DCR") == "DCR":
        y = transpose(y, (0, 3, 5, 1, 2, 4))  # (N, b, b, C, H/b, W/b)
    else:
        y = transpose(y, (0, 1, 3, 5, 2, 4))  # (N, C, b, b, H/b, W/b)
    return reshape(y, (n, c * b * b, h // b, w // b))
