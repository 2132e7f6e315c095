"""Op-table rows of gathers, scatters, takes and indexing. Expectations come from explicit
loops over the index (in row-major order, the order duplicates are applied in)."""

from __future__ import annotations

import numpy as np

import graphc as gc
from tests.ops.harness import Case, In


def _gather(x, axis, index):
    out = np.empty(index.shape, x.dtype)
    for pos in np.ndindex(index.shape):
        at = list(pos)
        at[axis] = int(index[pos])
        out[pos] = x[tuple(at)]
    return out


def _scatter(x, axis, index, src, combine):
    out = np.array(x, copy=True)
    for pos in np.ndindex(index.shape):
        at = list(pos)
        at[axis] = int(index[pos])
        at = tuple(at)
        out[at] = combine(out[at], src[pos])
    return out


def _scatter_no_self(x, axis, index, src, combine):
    """scatter_reduce with include_self=False: targets that receive values forget x's."""
    out, seen = np.array(x, copy=True), set()
    for pos in np.ndindex(index.shape):
        at = list(pos)
        at[axis] = int(index[pos])
        at = tuple(at)
        out[at] = src[pos] if at not in seen else combine(out[at], src[pos])
        seen.add(at)
    return out


def _scatter_mean(x, axis, index, src):
    total, count = np.zeros_like(x), np.zeros_like(x)
    for pos in np.ndindex(index.shape):
        at = list(pos)
        at[axis] = int(index[pos])
        total[tuple(at)] += src[pos]
        count[tuple(at)] += 1
    return np.where(count > 0, total / np.maximum(count, 1), x)


def _index_select(x, axis, index):
    moved = np.moveaxis(x, axis, 0)
    return np.moveaxis(np.stack([moved[int(i)] for i in index]), 0, axis)


def _bilinear(x, out_h, out_w, align_corners):
    """Bilinear resize by the textbook formula, one output pixel at a time."""
    n, c, h, w = x.shape

    def source(d, n_in, n_out):
        if align_corners:
            return d * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        return max((d + 0.5) * n_in / n_out - 0.5, 0.0)

    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            y, z = source(i, h, out_h), source(j, w, out_w)
            y0, z0 = int(y), int(z)
            y1, z1 = min(y0 + 1, h - 1), min(z0 + 1, w - 1)
            dy, dz = y - y0, z - z0
            out[:, :, i, j] = ((1 - dy) * ((1 - dz) * x[:, :, y0, z0] + dz * x[:, :, y0, z1])
                               + dy * ((1 - dz) * x[:, :, y1, z0] + dz * x[:, :, y1, z1]))
    return out


INDEXING_CASES: list[Case] = [
    Case("gather", lambda a, i: gc.gather(a, 1, i), (In((3, 4)), In((2, 3), "int64", "int:0:4")),
         lambda a, i: _gather(a, 1, i)),
    # indices broadcast against the input, negative ones counted from the end (wrap_index)
    Case("take_along_axis", lambda a, i: gc.take_along_axis(a, i, axis=1),
         (In((3, 4)), In((1, 5), "int32", "int:-4:4")),
         lambda a, i: _gather(a, 1, np.broadcast_to(i % 4, (3, 5)))),
    Case("scatter", lambda a, i, s: gc.scatter(a, 0, i, s),
         (In((3, 4)), In((4, 3), "int64", "int:0:3"), In((4, 3))),
         lambda a, i, s: _scatter(a, 0, i, s, lambda old, new: new)),
    Case("scatter_add", lambda a, i, s: gc.scatter_add(a, 1, i, s),
         (In((2, 3)), In((2, 5), "int64", "int:0:3"), In((2, 6))),
         lambda a, i, s: _scatter(a, 1, i, s[:, :5], lambda old, new: old + new)),
    Case("scatter_reduce_prod", lambda a, i, s: gc.scatter_reduce(a, 0, i, s, "prod"),
         (In((2, 5), kind="zeros"), In((3, 5), "int64", "int:0:2"), In((3, 5), kind="zeros")),
         lambda a, i, s: _scatter(a, 0, i, s, lambda old, new: old * new)),
    Case("scatter_reduce_amax_exclude_self",
         lambda a, i, s: gc.scatter_reduce(a, 0, i, s, "amax", include_self=False),
         (In((3, 4), kind="distinct"), In((4, 4), "int64", "int:0:3"), In((4, 4), kind="distinct")),
         lambda a, i, s: _scatter_no_self(a, 0, i, s, max)),
    Case("scatter_reduce_amin", lambda a, i, s: gc.scatter_reduce(a, 1, i, s, "amin"),
         (In((2, 3), kind="distinct"), In((2, 4), "int64", "int:0:3"), In((2, 4), kind="distinct")),
         lambda a, i, s: _scatter(a, 1, i, s, min)),
    Case("scatter_reduce_mean_exclude_self",
         lambda a, i, s: gc.scatter_reduce(a, 0, i, s, "mean", include_self=False),
         (In((4, 2)), In((3, 2), "int64", "int:0:4"), In((3, 2))), lambda a, i, s:
         _scatter_mean(a, 0, i, s)),
    Case("index_select", lambda a, i: gc.index_select(a, dim=1, index=i),
         (In((2, 4, 3)), In((5,), "int64", "int:0:4")), lambda a, i: _index_select(a, 1, i)),
    Case("take_flat_negative", lambda a, i: gc.take(a, i), (In((3, 4)), In((2, 2), "int64",
                                                                            "int:-12:12")),
         lambda a, i: np.array([[a.ravel()[int(v) % 12] for v in row] for row in i])),
    Case("masked_fill", lambda a, m: gc.masked_fill(a, m, -1.5), (In((3, 4)), In((4,), "bool",
                                                                                 "bool")),
         lambda a, m: np.array([[-1.5 if f else v for v, f in zip(row, m)] for row in a])),
    # ----- shape ops (compositions: their rows check the semantics) -----
    Case("stack", lambda a, b: gc.stack([a, b], dim=1), (In((2, 3)), In((2, 3))),
         lambda a, b: np.array([[list(x), list(y)] for x, y in zip(a, b)])),
    Case("split_chunk_unbind", lambda a: gc.concat(
        [*reversed(gc.split(a, 2, dim=1)), gc.concat(gc.chunk(a, 3, 0)[::-1], 0),
         gc.stack(gc.unbind(a, 1)[::-1], 1)], 1), (In((4, 5)),),
         lambda a: np.array([[a[i, j] for j in (4, 2, 3, 0, 1)] + list(a[(2, 3, 0, 1)[i]])
                             + [a[i, j] for j in (4, 3, 2, 1, 0)] for i in range(4)])),
    Case("flip_roll", lambda a: gc.roll(gc.flip(a, (0, 2)), (1, -1), (0, 1)), (In((3, 4, 2)),),
         lambda a: np.array([[[a[2 - ((i - 1) % 3), (j + 1) % 4, 1 - k] for k in range(2)]
                              for j in range(4)] for i in range(3)])),
    Case("tile_repeat", lambda a: gc.tile(a, (2, 1, 2)) + gc.repeat(a, 2, 1, 2), (In((2, 3)),),
         lambda a: 2 * np.array([[[a[i, j % 3] for j in range(6)] for i in range(2)]] * 2)),
    Case("repeat_interleave", lambda a: gc.concat([
        gc.repeat_interleave(a, 2, dim=0).reshape(-1), gc.repeat_interleave(a, [1, 0, 3], 1)
        .reshape(-1), gc.repeat_interleave(a, 2)]), (In((2, 3)),),
         lambda a: np.array([a[i // 2, j] for i in range(4) for j in range(3)]
                            + [a[i, j] for i in range(2) for j in (0, 2, 2, 2)]
                            + [v for v in a.ravel() for _ in range(2)])),
    Case("view_ops", lambda a: gc.expand(gc.unsqueeze(gc.unflatten(gc.flatten(gc.permute(
        a, 2, 0, 1), 1), 1, (2, -1)), 0), 2, -1, -1, -1), (In((2, 4, 3)),),
         lambda a: np.array([[[[a[i, j, k] for j in range(4)] for i in range(2)]
                              for k in range(3)]] * 2)),
    # ----- x[...] with NumPy's advanced indexing -----
    # arrays apart (a slice between): the broadcast index shape leads; an int joins them
    Case("getitem_arrays_apart", lambda a: a[[0, -1, 1], 1:, [[2], [-3]]], (In((3, 4, 3)),),
         lambda a: np.array([[[a[i, j, k] for j in range(1, 4)] for i in (0, 2, 1)]
                             for k in (2, 0)])),
    Case("getitem_mask", lambda a: a[np.array([[True, False, True], [False, False, True]]), None],
         (In((2, 3, 2)),), lambda a: np.array([[a[0, 0]], [a[0, 2]], [a[1, 2]]])),
    # an int graph value indexes adjacent axes; negative entries wrap at call time
    Case("getitem_graph_index", lambda a, i: a[:, i, 1], (In((2, 4, 3)), In((5,), "int64",
                                                                               "int:-4:4")),
         lambda a, i: np.array([[a[n, int(v) % 4, 1] for v in i] for n in range(2)])),
    # ----- einsum -----
    Case("einsum_contraction", lambda a, b: gc.einsum("bij,jkb->bki", a, b),
         (In((2, 3, 4)), In((4, 5, 1))),
         lambda a, b: np.array([[[sum(a[n, i, j] * b[j, k, 0] for j in range(4))
                                  for i in range(3)] for k in range(5)] for n in range(2)])),
    Case("einsum_trace_diagonal_outer", lambda a, v: gc.einsum("ii,jj->", a, a)
         + gc.einsum("ii,j->ij", a, v), (In((3, 3)), In((2,))),
         lambda a, v: np.array([[a[i, i] * v[j] for j in range(2)] for i in range(3)])
         + sum(a[i, i] for i in range(3)) ** 2),
    # ----- interpolate -----
    Case("interpolate_nearest", lambda a: gc.interpolate(a, scale_factor=(2, 3)),
         (In((1, 2, 2, 3)),), lambda a: a[:, :, [0, 0, 1, 1]][:, :, :, [j // 3 for j in range(9)]]),
    Case("interpolate_bilinear", lambda a: gc.interpolate(a, size=(5, 4), mode="bilinear"),
         (In((2, 1, 3, 3)),), lambda a: _bilinear(a, 5, 4, False)),
    Case("interpolate_bilinear_align_corners", lambda a: gc.interpolate(
        a, size=(4, 7), mode="bilinear", align_corners=True), (In((1, 2, 3, 4)),),
         lambda a: _bilinear(a, 4, 7, True)),
    Case("gather_scatter_symbolic", lambda a, i: gc.scatter_add(a, 1, i, gc.gather(a, 1, i)),
         (In(("N", 4)), In(("N", 3), "int64", "int:0:4")),
         lambda a, i: _scatter(a, 1, i, _gather(a, 1, i), lambda old, new: old + new),
         bindings={"N": 2}),
]
