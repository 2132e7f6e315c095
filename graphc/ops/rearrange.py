"""Shape ops under PyTorch's names, composed of reshape, transpose, broadcast_to, concat,
slice and take (so gradients, fusion and lowering come from those): stack, split, chunk,
unbind, flip, roll, tile, repeat, repeat_interleave, permute, unsqueeze, flatten,
unflatten, expand.

Naming follows PyTorch where NumPy differs: `repeat` tiles the whole value
(torch.Tensor.repeat, NumPy's tile); `repeat_interleave` repeats each element (NumPy's
repeat); `split` takes chunk sizes (PyTorch), not NumPy's section counts or split points."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.arguments import (
    inner_text,
    int_argument,
    int_sequence,
    new_axis,
    one_axis,
    pick,
    reworded,
    static_dim,
    values,
)
from graphc.ops.shape import broadcast_to, concat, expand_dims, reshape, transpose
from graphc.shapes import as_dim, dims_equal, shape_str, size

__all__ = [  # the public builders (graphc/dsl.py)
    "stack", "split", "chunk", "unbind", "flip", "roll", "tile", "repeat",
    "repeat_interleave", "permute", "unsqueeze", "flatten", "unflatten", "expand",
]


def _dim(op: str, x: Node, dim, axis, default=None, what: str = "dim") -> int:
    chosen = pick(op, "dim", dim, "axis", axis, default)
    if chosen is None:
        raise build_error(op, f"needs {what}=")
    return one_axis(op, chosen, x, what)


def _slice(x: Node, axis: int, start: int, stop: int, step: int = 1) -> Node:
    """x[..., start:stop:step, ...] along one axis (a whole symbolic axis stays whole)."""
    index = tuple((start, stop, step) if a == axis else
                  (0, d, 1) if isinstance(d, int) else (None, None, 1)
                  for a, d in enumerate(x.shape))
    return Node.make("slice", (x,), index=index)


def stack(values_: Sequence, axis=None, *, dim=None) -> Node:
    """numpy.stack / torch.stack: values of one shape joined along a new axis."""
    if not isinstance(values_, (list, tuple)) or not values_:
        raise build_error("stack", "needs a non-empty list of values")
    nodes = values("stack", *values_)
    first = nodes[0]
    for other in nodes[1:]:
        if other.ndim != first.ndim or not builtins.all(
                dims_equal(a, b) for a, b in zip(other.shape, first.shape)):
            shapes = ", ".join(shape_str(n.shape) for n in nodes)
            raise build_error("stack", f"values must have one shape, got {shapes}")
    position = new_axis("stack", pick("stack", "axis", axis, "dim", dim, 0), first)
    return concat([expand_dims(n, position) for n in nodes], axis=position)


def split(x, split_size_or_sections, dim=None, *, axis=None) -> tuple[Node, ...]:
    """torch.split: pieces of `split_size_or_sections` along dim (the last may be
    smaller), or of the listed sizes, which must add up to the axis' size."""
    (x,) = values("split", x)
    axis = _dim("split", x, dim, axis, 0)
    size = static_dim("split", x, axis, "split needs its size")
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = int_sequence("split", "sections", split_size_or_sections, 0)
        if builtins.sum(sizes) != size:
            raise build_error("split", f"sections {list(sizes)} add up to {builtins.sum(sizes)}, "
                              f"not the size {size} of axis {axis} of {shape_str(x.shape)}")
    else:
        piece = int_argument("split", "split_size", split_size_or_sections, 1)
        sizes = tuple(builtins.min(piece, size - start) for start in range(0, size, piece))
        sizes = sizes or (0,)
    pieces, start = [], 0
    for n in sizes:
        pieces.append(_slice(x, axis, start, start + n))
        start += n
    return tuple(pieces)


def chunk(x, chunks: int, dim=None, *, axis=None) -> tuple[Node, ...]:
    """torch.chunk: at most `chunks` pieces of ceil(size / chunks) along dim."""
    (x,) = values("chunk", x)
    chunks = int_argument("chunk", "chunks", chunks, 1)
    axis = _dim("chunk", x, dim, axis, 0)
    size = static_dim("chunk", x, axis, "chunk needs its size")
    return split(x, builtins.max(1, -(-size // chunks)), axis)


def unbind(x, dim=None, *, axis=None) -> tuple[Node, ...]:
    """torch.unbind: the slices along dim, that axis removed."""
    (x,) = values("unbind", x)
    axis = _dim("unbind", x, dim, axis, 0)
    size = static_dim("unbind", x, axis, "unbind needs its size")
    shape = x.shape[:axis] + x.shape[axis + 1:]
    return tuple(reshape(_slice(x, axis, k, k + 1), shape) for k in range(size))


def flip(x, dims=None, *, axis=None) -> Node:
    """torch.flip / numpy.flip: the order along the given axes reversed (all when None)."""
    (x,) = values("flip", x)
    chosen = pick("flip", "dims", dims, "axis", axis)
    axes = range(x.ndim) if chosen is None else {
        one_axis("flip", a, x, "dims") for a in int_sequence("flip", "dims", chosen)}
    index = tuple((None, None, -1) if a in axes else
                  (0, d, 1) if isinstance(d, int) else (None, None, 1)
                  for a, d in enumerate(x.shape))
    index = tuple((d - 1, -1, -1) if step == -1 and isinstance(d, int) else (s, e, step)
                  for (s, e, step), d in zip(index, x.shape))
    return Node.make("slice", (x,), index=index) if axes else x


def roll(x, shifts, dims=None) -> Node:
    """torch.roll: elements shifted along dims, wrapping around (dims None: the flattened
    input, shape kept)."""
    (x,) = values("roll", x)
    shifts = int_sequence("roll", "shifts", shifts)
    if dims is None:
        if len(shifts) != 1:
            raise build_error("roll", "with dims None, shifts must be one int")
        return reshape(roll(reshape(x, (-1,)), shifts, 0), x.shape)
    dims = int_sequence("roll", "dims", dims)
    if len(dims) != len(shifts):
        raise build_error("roll", f"shifts {list(shifts)} and dims {list(dims)} differ in length")
    out = x
    for shift, dim in zip(shifts, dims):
        axis = one_axis("roll", dim, x, "dims")
        size = static_dim("roll", x, axis, "roll needs its size")
        s = shift % size if size else 0
        if s:
            out = concat([_slice(out, axis, size - s, size), _slice(out, axis, 0, size - s)],
                         axis)
    return out


def tile(x, reps) -> Node:
    """numpy.tile / torch.tile: x repeated reps[k] times along axis k (reps shorter than
    the rank are padded with 1s in front; longer ones add leading axes)."""
    (x,) = values("tile", x)
    reps = int_sequence("tile", "reps", reps, 0)
    return _tile("tile", x, reps)


def _tile(op: str, x: Node, reps: tuple[int, ...]) -> Node:
    rank = builtins.max(len(reps), x.ndim)
    reps = (1,) * (rank - len(reps)) + tuple(reps)
    x = reshape(x, (1,) * (rank - x.ndim) + x.shape)
    spread = reshape(x, tuple(d for dim in x.shape for d in (1, dim)))
    wide = broadcast_to(spread, tuple(d for r, dim in zip(reps, x.shape) for d in (r, dim)))
    return reshape(wide, tuple(as_dim(r * dim) for r, dim in zip(reps, x.shape)))


def repeat(x, *sizes) -> Node:
    """torch.Tensor.repeat: x tiled sizes[k] times along axis k (NumPy's tile; for NumPy's
    repeat, each element repeated, see repeat_interleave). At least x's rank of sizes."""
    (x,) = values("repeat", x)
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = tuple(sizes[0])
    sizes = int_sequence("repeat", "sizes", sizes, 0)
    if len(sizes) < x.ndim:
        raise build_error("repeat", f"needs at least {x.ndim} sizes for {shape_str(x.shape)}, "
                          f"got {list(sizes)}")
    return _tile("repeat", x, sizes)


def repeat_interleave(x, repeats, dim=None, *, axis=None) -> Node:
    """torch.repeat_interleave (NumPy's repeat): each element repeated `repeats` times
    along dim (None: of the flattened input); repeats an int, or one count per element
    given as a list, array or constant (the counts fix the output's shape)."""
    op = "repeat_interleave"
    (x,) = values(op, x)
    chosen = pick(op, "dim", dim, "axis", axis)
    if chosen is None:
        x, chosen = reshape(x, (-1,)), 0
    axis = one_axis(op, chosen, x, "dim")
    if isinstance(repeats, Node):
        if repeats.op != "constant":
            raise build_error(op, "repeats must be an int or constant counts: their values fix "
                              "the output's shape, which graphs must know when they are built")
        repeats = repeats.value
    counts = np.asarray(repeats)
    if counts.dtype.kind not in "iu" or counts.ndim > 1:
        raise build_error(op, f"repeats must be an int or a 1-D list of ints, got {repeats!r}")
    if (counts < 0).any():
        raise build_error(op, f"repeats must not be negative, got {counts.tolist()}")
    if counts.ndim == 0 or counts.size == 1:
        r = int(counts.reshape(-1)[0]) if counts.size else 0
        wide = broadcast_to(expand_dims(x, axis + 1),
                            x.shape[:axis + 1] + (r,) + x.shape[axis + 1:])
        return reshape(wide, x.shape[:axis] + (as_dim(x.shape[axis] * r),) + x.shape[axis + 1:])
    size = static_dim(op, x, axis, "per-element repeats need its size")
    if counts.size != size:
        raise build_error(op, f"{counts.size} repeats for axis {axis} of size {size} "
                          f"({shape_str(x.shape)})")
    (index,) = values(op, np.repeat(np.arange(size, dtype=np.int64), counts))
    return Node.make("take", (x, index), axis=axis, caller=op)


def permute(x, *dims) -> Node:
    """torch.permute: the axes in the order given (output axis k is input axis dims[k])."""
    (x,) = values("permute", x)
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = tuple(dims[0])
    dims = tuple(one_axis("permute", d, x, "dims") for d in int_sequence("permute", "dims", dims))
    if sorted(dims) != list(range(x.ndim)):
        raise build_error("permute", f"dims {list(dims)} are not a permutation of the "
                          f"{x.ndim} axes of {shape_str(x.shape)}")
    return transpose(x, dims)


def unsqueeze(x, dim=None, *, axis=None) -> Node:
    """torch.unsqueeze: a new axis of size 1 at dim (-1: at the end)."""
    (x,) = values("unsqueeze", x)
    chosen = pick("unsqueeze", "dim", dim, "axis", axis)
    if chosen is None:
        raise build_error("unsqueeze", "needs dim=")
    return expand_dims(x, new_axis("unsqueeze", chosen, x))


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Node:
    """torch.flatten: axes start_dim..end_dim (inclusive) merged into one."""
    (x,) = values("flatten", x)
    if x.ndim == 0:
        return reshape(x, (1,))
    start = one_axis("flatten", start_dim, x, "start_dim")
    end = one_axis("flatten", end_dim, x, "end_dim")
    if start > end:
        raise build_error("flatten", f"start_dim {start_dim} comes after end_dim {end_dim} "
                          f"for {shape_str(x.shape)}")
    merged = as_dim(size(x.shape[start:end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def unflatten(x, dim: int, sizes) -> Node:
    """torch.unflatten: axis dim split into `sizes` (one of them may be -1)."""
    (x,) = values("unflatten", x)
    axis = one_axis("unflatten", dim, x, "dim")
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise build_error("unflatten", f"sizes must be a non-empty list, got {sizes!r}")
    try:
        return reshape(x, x.shape[:axis] + tuple(sizes) + x.shape[axis + 1:])
    except ValueError as exc:
        raise build_error("unflatten", f"cannot split axis {axis} of {shape_str(x.shape)} into "
                          f"{list(sizes)}: {inner_text(exc)}") from None


def expand(x, *sizes) -> Node:
    """torch.Tensor.expand: x broadcast to sizes (-1 keeps a dim; new axes go in front)."""
    (x,) = values("expand", x)
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = tuple(sizes[0])
    if len(sizes) < x.ndim:
        raise build_error("expand", f"needs at least {x.ndim} sizes for {shape_str(x.shape)}, "
                          f"got {list(sizes)}")
    lead = len(sizes) - x.ndim
    shape = []
    for k, wanted in enumerate(sizes):
        if isinstance(wanted, int) and wanted == -1:
            if k < lead:
                raise build_error("expand", f"-1 is not allowed for the new leading axis {k}")
            shape.append(x.shape[k - lead])
        else:
            shape.append(wanted)
    try:
        return broadcast_to(x, tuple(shape))
    except ValueError as exc:
        raise reworded("expand", exc) from None
