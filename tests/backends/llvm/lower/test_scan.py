"""The scan kernels: every layout around the axis (outer rows split among threads, one row
split by columns, reverse scans, empty axes), against the reference on any thread count
(one program holds every layout)."""

from __future__ import annotations

import numpy as np

import graphc as gc

RNG = np.random.default_rng(13)
LAYOUTS = [((7, 50, 3), 1), ((1, 400, 33), 1), ((333,), 0), ((5, 2), 0), ((4, 1, 6), 1),
           ((3, 0, 2), 1)]


def test_scans_agree_with_the_reference_on_every_layout():
    inputs, outputs, arrays = [], [], []
    for k, (shape, axis) in enumerate(LAYOUTS):
        x = gc.input(f"x{k}", shape, "float64")
        a = RNG.uniform(0.9, 1.1, size=shape)
        if a.size:
            a[tuple(s // 2 for s in shape)] = np.nan
        inputs.append(x)
        arrays.append(a)
        outputs += [gc.cumsum(x, axis), gc.cumprod(x, axis), gc.cummax(x, axis).indices,
                    gc.cummin(x, axis).indices]
        outputs += gc.grad(gc.sum(gc.cumsum(x, axis) * x), [x])  # a reverse cumsum
    expected = gc.compile(inputs, outputs, backend="numpy")(*arrays)
    for threads in (1, 2, 3):
        for g, e in zip(gc.compile(inputs, outputs, threads=threads)(*arrays), expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, equal_nan=True,
                                       err_msg=f"threads={threads}")
