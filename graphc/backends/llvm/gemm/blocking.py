"""Register tile and cache blocks of the GEMM: the constants, the blocking of one
shape and the scratch it needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphc.backends.llvm.codegen.arith import round_up
from graphc.backends.llvm.codegen.vector import lanes, vector_bytes, vector_registers
from graphc.backends.llvm.runtime import target

TILE_VECTORS = 2  # vectors per tile row: NR = 2 vectors (32 float32 with AVX-512, 16 AVX2)
MAX_MR = 8  # rows of the register tile at most
K_UNROLL = 4  # depths per trip of the micro-kernel's loop (with FMA: see k_unroll)
KC, MC, NC = 512, 128, 1024  # cache blocks: depth, rows, columns
MIN_ITEMS = 4  # split smaller problems into this many items where possible (threads)
SCRATCH_SLOTS = 8  # per-thread scratch regions; threads beyond them sit out a GEMM


def mr() -> int:
    """Rows of the register tile: `graphc tune`'s choice for the target, else as many as
    its vector registers hold as accumulators (MR x TILE_VECTORS of them) beside the
    TILE_VECTORS vectors of B and the broadcast element of A, at most MAX_MR: 8 x 2
    vectors with 32 registers (AVX-512, NEON), 6 x 2 with 16 (AVX2, SSE), the tiles BLIS
    uses on Skylake-X and Haswell."""
    fits = min(MAX_MR, (vector_registers() - TILE_VECTORS - 1) // TILE_VECTORS)
    tuned = target.current().tuning.gemm_rows
    return tuned if tuned is not None and 1 <= tuned <= fits else fits


def k_unroll() -> int:
    """Depths per trip of the micro-kernel's loop: K_UNROLL where the target has FMA (on
    Zen 3 the 6 x 16 tile's loop ran at ~65% of the FMA peak one depth a trip, ~94% four
    a trip, its panels in L1); one without FMA, whose multiply-add needs a register more
    (a 6 x 2 tile of SSE's 16 then fills them all, and unrolled, LLVM spilled in the loop)."""
    return K_UNROLL if target.current().fma else 1


def depth_block() -> int:
    """The depth block: `graphc tune`'s choice, else KC. It fixes each element's
    summation order (the same on any thread count)."""
    tuned = target.current().tuning.gemm_depth
    return tuned if tuned is not None and 16 <= tuned <= 4096 else KC


def row_block() -> int:
    """The row block: `graphc tune`'s choice, else MC."""
    tuned = target.current().tuning.gemm_block_rows
    return tuned if tuned is not None and 8 <= tuned <= 4096 else MC


def nr(dtype: np.dtype) -> int:
    return lanes(dtype) * TILE_VECTORS


def supported(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind == "f"


@dataclass(frozen=True)
class Blocking:
    """Cache blocks of one GEMM shape (rows mc, columns nc, depth kc), chosen from the
    shape alone: kc fixes every element's summation order; mc and nc only share out work."""

    mc: int
    nc: int
    kc: int

    @staticmethod
    def of(batch: int, m: int, n: int, k: int, dtype: np.dtype) -> Blocking:
        width = nr(dtype)
        # Row blocks of equal size, an even number of them (two threads share them alike).
        m_blocks = -(-m // row_block())
        m_blocks += m_blocks % 2 if m_blocks > 1 else 0
        mc, nc = round_up(-(-m // m_blocks), mr()), min(NC, round_up(n, width))
        while batch * -(-m // mc) * -(-n // nc) < MIN_ITEMS:
            if mc >= 2 * mr():  # rows first: B is then packed once per column block
                mc = round_up(mc // 2, mr())
            elif nc >= 2 * width:
                nc = round_up(nc // 2, width)
            else:
                break
        return Blocking(mc, nc, max(1, min(depth_block(), k)))

    def layout(self, dtype: np.dtype) -> dict[str, int]:
        """Byte offsets in one thread's scratch: the packed A block and B panels (plus the
        elements a transposed A block and the depth rows one run-packed B block may write
        past them), a C tile,
        the A column table (kc i64), B's row tables (3 x kc i64) and column tables
        (3 x nc i32); "end" is the size."""
        size = np.dtype(dtype).itemsize
        parts = {"a_pack": (self.mc * self.kc + lanes(dtype)) * size,
                 "b_pack": (self.nc * self.kc + nr(dtype) * lanes(dtype)) * size,
                 "tile": mr() * nr(dtype) * size, "a_cols": 8 * self.kc,
                 "b_rows": 3 * 8 * self.kc, "b_cols": 3 * 4 * self.nc}
        out, at = {}, 0
        for name, nbytes in parts.items():
            out[name] = at
            at += round_up(nbytes, vector_bytes())
        out["end"] = at
        return out


def scratch_bytes(batch: int, m: int, n: int, k: int, dtype: np.dtype) -> int:
    """The scratch a GEMM of this shape needs, for every thread slot."""
    if m * n * batch == 0:
        return 0
    return SCRATCH_SLOTS * Blocking.of(batch, m, n, k, dtype).layout(dtype)["end"]
