"""Op-table rows of the reductions and scans beyond sum/mean/max: products, arg-minima,
max/min with indices, statistics (var, std, logsumexp, norms), any/all and the cumulative
ops. Expectations come from Python's math module over explicit loops."""

from __future__ import annotations

import math

import numpy as np

import graphc as gc
from tests.ops.harness import Case, In, optimized


def _rows(fn, axis=-1):
    """fn applied to each 1-D row along `axis` (a scalar per row)."""
    def apply(a):
        moved = np.moveaxis(a, axis, -1)
        out = np.empty(moved.shape[:-1])
        for idx in np.ndindex(out.shape):
            out[idx] = fn([float(v) for v in moved[idx]])
        return out
    return apply


def _first(values, better):
    best = 0
    for k, v in enumerate(values):
        if better(v, values[best]):
            best = k
    return best


def _running(a, axis, combine):
    """Running combination along an axis, element by element."""
    out = np.array(a, dtype=np.float64 if a.dtype.kind == "f" else np.int64)
    moved = np.moveaxis(out, axis, -1)
    for idx in np.ndindex(moved.shape[:-1]):
        for i in range(1, moved.shape[-1]):
            moved[idx + (i,)] = combine(moved[idx + (i - 1,)], moved[idx + (i,)])
    return out


def _running_index(a, axis, takes):
    """Where the running extremum was last met (PyTorch's cummax/cummin indices)."""
    out = np.zeros(a.shape, np.int64)
    moved, where = np.moveaxis(a, axis, -1), np.moveaxis(out, axis, -1)
    for idx in np.ndindex(moved.shape[:-1]):
        best, at = moved[idx + (0,)], 0
        for i in range(moved.shape[-1]):
            if takes(moved[idx + (i,)], best) or math.isnan(moved[idx + (i,)]):
                best, at = moved[idx + (i,)], i
            where[idx + (i,)] = at
    return out


def _stable_order(row, descending):
    """Positions of a row in stable sorted order (insertion into a list, no NumPy sort)."""
    order: list[int] = []
    for p, v in enumerate(row):
        k = len(order)
        while k > 0 and (row[order[k - 1]] < v if descending else row[order[k - 1]] > v):
            k -= 1
        order.insert(k, p)
    return order


def _sorted(a, axis, descending, what):
    out = np.zeros(a.shape, a.dtype if what == "values" else np.int64)
    moved, res = np.moveaxis(a, axis, -1), np.moveaxis(out, axis, -1)
    for idx in np.ndindex(moved.shape[:-1]):
        order = _stable_order(list(moved[idx]), descending)
        res[idx] = order if what == "indices" else [moved[idx][p] for p in order]
    return out


def _var(row, correction=1):
    mu = math.fsum(row) / len(row)
    return math.fsum((v - mu) ** 2 for v in row) / (len(row) - correction)


def _logsumexp(row):
    top = max(row)
    return top + math.log(math.fsum(math.exp(v - top) for v in row))


REDUCTION_CASES: list[Case] = [
    Case("prod", lambda a: gc.prod(a, dim=1), (In((3, 4)),), _rows(math.prod)),
    # rows with no, one and two zeros: the gradient at a lone zero is the others' product
    Case("prod_with_zeros", lambda a: gc.prod(a, axis=-1, keepdims=True),
         (In((3, 4), kind="zeros"),), lambda a: _rows(math.prod)(a)[:, None]),
    Case("prod_int", lambda a: a.prod(axis=0), (In((3, 2), "int32", "int:-4:4"),),
         lambda a: np.array([math.prod(int(v) for v in a[:, j]) for j in range(2)], np.int64),
         grad=False),
    Case("argmin", lambda a: gc.argmin(a, dim=0), (In((4, 3), kind="distinct"),),
         lambda a: np.array([_first(list(a[:, j]), lambda u, v: u < v) for j in range(3)]),
         grad=False),
    Case("max_with_indices", lambda a: gc.max(a, dim=1, return_indices=True).values * 2.0,
         (In((3, 5), kind="distinct"),), lambda a: 2 * _rows(max)(a)),
    Case("min_indices", lambda a: gc.min(a, 0, keepdims=True, return_indices=True).indices,
         (In((4, 3), kind="distinct"),),
         lambda a: np.array([[_first(list(a[:, j]), lambda u, v: u < v) for j in range(3)]]),
         grad=False),
    # ----- scans -----
    Case("cumsum", lambda a: gc.cumsum(a, dim=1), (In((2, 5, 3)),),
         lambda a: _running(a, 1, lambda u, v: u + v)),
    Case("cumsum_flat_int", lambda a: gc.cumsum(a), (In((2, 3), "int32", "int:-5:5"),),
         lambda a: np.array([sum(int(v) for v in a.ravel()[:i + 1]) for i in range(6)]),
         grad=False),
    # zeros first, in the middle and twice in a row: the gradient's three regimes
    Case("cumprod_with_zeros", lambda a: gc.cumprod(a, axis=-1), (In((3, 5), kind="zeros"),),
         lambda a: _running(a, -1, lambda u, v: u * v)),
    Case("cumprod_axis0", lambda a: gc.cumprod(a, axis=0), (In((4, 3)),),
         lambda a: _running(a, 0, lambda u, v: u * v)),
    Case("cummax", lambda a: gc.cummax(a, dim=1).values, (In((3, 6), kind="distinct"),),
         lambda a: _running(a, 1, max)),
    # ties (small ints): the index is the last position holding the maximum
    Case("cummax_indices_ties", lambda a: gc.cummax(a, 0).indices,
         (In((6, 2), "int32", "int:0:3"),), lambda a: _running_index(a, 0, lambda u, v: u >= v),
         grad=False),
    Case("cummin", lambda a: gc.cummin(a, dim=0).values, (In((5, 2), kind="distinct"),),
         lambda a: _running(a, 0, min)),
    Case("cummin_indices", lambda a: gc.cummin(a, dim=-1).indices,
         (In((2, 6), "int64", "int:0:4"),), lambda a: _running_index(a, -1, lambda u, v: u <= v),
         grad=False),
    # ----- sorting -----
    Case("sort", lambda a: gc.sort(a, dim=1).values, (In((3, 7), kind="distinct"),),
         lambda a: _sorted(a, 1, False, "values")),
    # ties (small ints), both directions: stable, equal values keep their order
    Case("argsort_ties", lambda a: gc.argsort(a, dim=0), (In((9, 2), "int32", "int:0:3"),),
         lambda a: _sorted(a, 0, False, "indices"), grad=False),
    Case("argsort_descending_ties", lambda a: gc.argsort(a, descending=True),
         (In((2, 11), "int64", "int:0:4"),), lambda a: _sorted(a, -1, True, "indices"),
         grad=False),
    Case("topk", lambda a: gc.topk(a, 3, dim=0).values, (In((6, 2), kind="distinct"),),
         lambda a: _sorted(a, 0, True, "values")[:3]),
    Case("topk_smallest_indices", lambda a: gc.topk(a, 2, largest=False).indices,
         (In((3, 5), kind="distinct"),), lambda a: _sorted(a, -1, False, "indices")[:, :2],
         grad=False),
    # ----- statistics -----
    Case("var", lambda a: gc.var(a, dim=1), (In((3, 5)),), _rows(_var)),
    Case("var_correction0_keepdims", lambda a: gc.var(a, axis=(0, 2), correction=0,
                                                      keepdims=True), (In((2, 3, 2)),),
         lambda a: np.array([_var(list(a[:, j, :].ravel()), 0) for j in range(3)])[None, :,
                                                                                    None]),
    Case("var_symbolic", lambda a: gc.var(a, axis=0), (In(("N", 2)),),
         lambda a: np.array([_var(list(a[:, j])) for j in range(2)]), bindings={"N": 4}),
    Case("std", lambda a: gc.std(a), (In((2, 4)),), lambda a: np.asarray(math.sqrt(
        _var(list(a.ravel()))))),
    Case("logsumexp", lambda a: gc.logsumexp(a, dim=-1), (In((3, 4)),), _rows(_logsumexp)),
    Case("norm_2", lambda a: gc.norm(a, dim=1), (In((3, 4)),),
         _rows(lambda r: math.sqrt(math.fsum(v * v for v in r)))),
    Case("norm_1_all", lambda a: gc.norm(a, 1), (In((3, 4)),),
         lambda a: np.asarray(math.fsum(abs(v) for v in a.ravel()))),
    Case("norm_inf", lambda a: gc.norm(a, math.inf, axis=0), (In((4, 3), kind="distinct"),),
         _rows(lambda r: max(abs(v) for v in r), axis=0)),
    Case("norm_3", lambda a: gc.norm(a, 3, axis=-1, keepdims=True), (In((2, 5)),),
         lambda a: _rows(lambda r: math.fsum(abs(v) ** 3 for v in r) ** (1 / 3))(a)[:, None]),
    Case("any_all", lambda a: gc.logical_and(gc.any(a, dim=1), gc.logical_not(gc.all(a, 1))),
         (In((4, 3), "int32", "int:0:2"),),
         lambda a: np.array([bool(max(r)) and not bool(min(r)) for r in a]), grad=False),
    # ----- fused and symbolic -----
    # an elementwise producer fused into the product (fused_reduce of kind prod)
    Case("prod_fused", lambda a: optimized(gc.prod(a * 0.5 + 1.0, axis=0)), (In((4, 3)),),
         lambda a: np.array([math.prod(v * 0.5 + 1 for v in a[:, j]) for j in range(3)])),
    Case("sort_cumsum_symbolic", lambda a: gc.cumsum(gc.sort(a, dim=1).values, axis=0),
         (In(("N", 5), kind="distinct"),),
         lambda a: _running(_sorted(a, 1, False, "values"), 0, lambda u, v: u + v),
         bindings={"N": 3}),
]
