"""The micro-kernel's generated loop on each register file: exactly the tile's FMAs for
k_unroll depths in one block, its B vectors and A broadcasts loaded once each, and
nothing spilled (a tile too big for the registers, or an unroll that makes LLVM spill,
costs a third of the speed)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.gemm import blocking
from graphc.backends.llvm.runtime import target

# target -> (FMA mnemonic, vector register pattern, stack reference pattern)
TARGETS = {"x86-64-v3": (r"vfmadd\w+ps", r"%ymm", r"\(%rsp\)"),
           "x86-64-v4": (r"vfmadd\w+ps", r"%zmm", r"\(%rsp\)"),
           "aarch64": (r"fmla", r"v\d+\.4s", r"\[sp")}


def _micro_kernel_assembly(name: str) -> tuple[str, target.Target]:
    # B wide enough that A is packed (a narrow B reads A where it lies).
    a, b = gc.input("a", (64, 64)), gc.input("b", (64, 256))
    variant = gc.compile([a, b], a @ b, threads=1, target=name).compiled(
        np.ones((64, 64), np.float32), np.ones((64, 256), np.float32))
    asm = target.assembly(variant.ir, variant.target)
    start = asm.index("gc_micro_float:")
    return asm[start:asm.index(".Lfunc_end", start)], variant.target


@pytest.mark.parametrize("name", list(TARGETS))
def test_the_inner_loop_is_the_tile_unrolled_without_spills(name):
    fma, register, stack = TARGETS[name]
    body, chosen = _micro_kernel_assembly(name)
    with target.using(chosen):
        rows, unroll = blocking.mr(), blocking.k_unroll()
        per_step = rows * blocking.TILE_VECTORS
    blocks = re.split(r"\n\.?L\w+:", body)
    loop = max(blocks, key=lambda block: len(re.findall(fma, block)))
    assert len(re.findall(fma, loop)) == per_step * unroll
    assert re.search(register, loop)
    assert not re.search(stack, body), "the micro-kernel spills"
    if name.startswith("x86"):
        # B's vectors loaded once per depth, A's element broadcast once per row and depth.
        assert len(re.findall(r"vbroadcastss", loop)) == rows * unroll
        assert len(re.findall(r"vmovaps\s+[-\d]*\(", loop)) == blocking.TILE_VECTORS * unroll


def test_depths_left_over_by_the_unrolled_loop():
    """Depth blocks of 18 (a tuned depth): 16 depths unrolled, 2 one at a time; the same
    bits on 1 and 2 threads, close to NumPy."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 41)).astype(np.float32), rng.normal(size=(41, 70)).astype(
        np.float32)
    a, b = gc.input("a", x.shape), gc.input("b", y.shape)
    chosen = dataclasses.replace(target.host_target(), tuning=target.Tuning(gemm_depth=18))
    got = [gc.compile([a, b], a @ b, threads=t, target=chosen)(x, y) for t in (1, 2)]
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_allclose(got[0], x.astype(np.float64) @ y, rtol=1e-5, atol=1e-5)
