"""Code generation for the host: a fused elementwise kernel comes out vectorized."""

from __future__ import annotations

import re

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.runtime import target


def _host_has(feature: str) -> bool:
    return f"+{feature}" in target.host()[2].split(",")


@pytest.mark.skipif(not _host_has("avx2"), reason="the host CPU has no AVX2")
def test_fused_elementwise_kernel_is_vectorized():
    a, b, c = (gc.input(n, (4096,)) for n in "abc")
    fn = gc.compile([a, b, c], gc.maximum(a * b + c, 0.0))
    args = [np.full(4096, v, np.float32) for v in (2.0, 3.0, -1.0)]
    np.testing.assert_array_equal(fn(*args), np.full(4096, 5.0, np.float32))
    ops = {s.node.op for s in fn.compiled().plan.steps if s.node is not None}
    assert ops == {"fused"}, "the optimizer should have fused the chain into one kernel"
    asm = target.assembly(fn.compiled().ir)
    # Packed float32 arithmetic writing a ymm/zmm register; its first operand may be
    # memory (which operand LLVM folds depends on the order of a * b, i.e. on node ids).
    vector_ops = re.findall(r"\bv(?:mul|add|max|fmadd\w*)ps\s+[^\n]*%[yz]mm\d+$", asm, re.M)
    assert vector_ops, "no packed float32 arithmetic on ymm/zmm registers"


def test_entry_is_one_native_call_for_any_graph_size():
    x = gc.input("x", (8,), "float64")
    y = x
    for k in range(40):
        y = gc.sin(y) * (1.0 + k) + gc.sum(y)
    fn = gc.compile([x], y)
    fn(np.ones(8))
    ir = fn.compiled().ir
    assert len(re.findall(r"^define\b(?!.*internal)", ir, re.M)) == 2  # entry, error value
    assert re.search(r"define i32 @\"?graphc_entry", ir)
