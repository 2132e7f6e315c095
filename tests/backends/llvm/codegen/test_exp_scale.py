"""exp's final x * 2**n: llvm.ldexp (AVX-512 hosts) and the two-half exponent-bit product
(elsewhere) both round once, so every function built on exp gives the same bits either
way, overflow to inf and subnormal results included."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.codegen import mathfuncs


def _values(dtype, extra: int) -> np.ndarray:
    lim = 120.0 if dtype == "float32" else 760.0
    x = np.concatenate([np.linspace(-lim, lim, 20001), [np.nan, np.inf, -np.inf, -0.0],
                        np.zeros(extra)])
    return x.astype(dtype)


def _run(dtype, extra: int) -> list[np.ndarray]:
    """Each function over the values; `extra` pads the input so that the two ways
    compile different programs (the disk cache keys on the program, not the host flag)."""
    x = _values(dtype, extra)
    v = gc.input("v", x.shape, dtype)
    f = gc.compile([v], [gc.exp(v), gc.sigmoid(v), gc.tanh(v), gc.gelu(v)])
    return [r[:x.size - extra] for r in f(x)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_both_ways_of_scaling_give_the_same_bits(dtype, monkeypatch):
    monkeypatch.setattr(mathfuncs, "_host_scales", lambda: True)
    with_ldexp = _run(dtype, 0)
    monkeypatch.setattr(mathfuncs, "_host_scales", lambda: False)
    with_bits = _run(dtype, 1)
    for a, b in zip(with_ldexp, with_bits, strict=True):
        np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))
    exp = with_ldexp[0]
    assert np.isinf(exp[_values(dtype, 0) > (89 if dtype == "float32" else 710)]).all()
    tiny = exp[(exp > 0) & (exp < np.finfo(dtype).tiny)]
    assert tiny.size > 0  # subnormal results were produced and compared
