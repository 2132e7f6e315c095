"""Op-table rows of the reductions and scans beyond sum/mean/max: products, arg-minima,
max/min with indices, statistics (var, std, logsumexp, norms), any/all and the cumulative
ops. Expectations come from Python's math module over explicit loops."""

from __future__ import annotations

import math

import numpy as np

import graphc as gc
from tests.ops.harness import Case, In


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
]
