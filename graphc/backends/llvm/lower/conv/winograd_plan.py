"""Winograd F(m x m, 3 x 3) convolution for stride-1 3 x 3 layers (forward and input
gradient): fewer multiplications than im2col + GEMM (F(4x4, 3x3): 36 products per 4 x 4
output tile and channel pair instead of 144).

With tiles of m x m outputs read from (m + 2) x (m + 2) input patches d, and 3 x 3
filters g, each output tile is A^T [(G g G^T) . (B^T d B)] A. The products over the
channels are (m + 2)^2 GEMMs, one per transformed position xi:
M[xi] (K x tiles) = U[xi] (K x C) @ V[xi] (C x tiles).

One kernel does it all. Its threads transform the weights (U, shared scratch, computed
every call in float64 and rounded once), then after a barrier each thread takes whole
items (runs of tile rows of the batch, images one after another) and runs over them in
blocks of NR tiles (the GEMM's register tile width; vector lanes = tiles):
the input patches are transformed into V, laid out as the GEMM's packed B panels
(per-thread scratch, in L2); gemm.micro_kernel multiplies U's packed panels with them into
M; the output transform puts each block's tiles into place. The epilogue (bias,
activation) runs on an item's rows once they are finished. Blocks and items are fixed by
the shapes, so the bits do not depend on the thread count.

Non-finite values: the transforms mix a patch's values, so an inf or NaN (or an overflow
of the transforms) would spread NaN over whole tiles. A block whose outputs are not all
finite is computed again term by term as the reference does (the forward convolution
multiplies the zero padding, the input gradient does not), so inf and NaN land where
NumPy puts them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction as F

import numpy as np

from graphc.backends.llvm import gemm

SLOTS = 8  # per-thread scratch regions; threads beyond them sit out
MIN_ITEMS = 2  # items a batch is cut into at least (where it has the tile rows)
KERNEL = 3


def matrices(m: int) -> tuple[list, list, list]:
    """(B^T, G, A^T) of F(m x m, 3 x 3) (Lavin and Gray's points 0, +-1, +-2, inf)."""
    if m == 2:
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        g = [[1, 0, 0], [F(1, 2), F(1, 2), F(1, 2)], [F(1, 2), F(-1, 2), F(1, 2)], [0, 0, 1]]
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
    elif m == 4:
        bt = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
              [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
        g = [[F(1, 4), 0, 0], [F(-1, 6), F(-1, 6), F(-1, 6)], [F(-1, 6), F(1, 6), F(-1, 6)],
             [F(1, 24), F(1, 12), F(1, 6)], [F(1, 24), F(-1, 12), F(1, 6)], [0, 0, 1]]
        at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
              [0, 1, -1, 8, -8, 1]]
    else:
        raise ValueError(f"conv2d winograd: no F({m}x{m}, 3x3) transform (tiles 2 or 4)")
    return bt, g, at


def transforms(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """B^T, G, A^T of F(m x m, 3 x 3) as float64 arrays."""
    return tuple(np.array([[float(v) for v in row] for row in mat]) for mat in matrices(m))


@dataclass(frozen=True)
class Winograd:
    """A stride-1 3 x 3 correlation as the kernel sees it: images (n, cin, h, w) padded by
    (ph, pw) into out (n, cout, ho, wo), in tiles of m x m outputs. The filter of output
    channel o over input channel c is w[o, c] or, `flipped` (the input gradient: channels
    swapped, kernel turned by 180 degrees), w[c, o, ::-1, ::-1]."""

    n: int
    cin: int
    h: int
    w: int
    cout: int
    ph: int
    pw: int
    m: int
    flipped: bool
    dtype: np.dtype

    @property
    def ho(self) -> int:
        return self.h + 2 * self.ph - KERNEL + 1

    @property
    def wo(self) -> int:
        return self.w + 2 * self.pw - KERNEL + 1

    @property
    def alpha(self) -> int:
        """The side of an input patch and of a transformed tile."""
        return self.m + KERNEL - 1

    @property
    def tiles_y(self) -> int:
        return -(-self.ho // self.m)

    @property
    def tiles_x(self) -> int:
        return -(-self.wo // self.m)

    @property
    def width(self) -> int:
        """Tiles per block: the GEMM micro-kernel's NR."""
        return gemm.nr(self.dtype)

    @property
    def kpad(self) -> int:
        """Output channels rounded up to the micro-kernel's MR rows."""
        return -(-self.cout // gemm.mr()) * gemm.mr()

    @property
    def rows(self) -> int:
        """Tile rows of the whole batch (an image's follow the previous image's)."""
        return self.n * self.tiles_y

    @property
    def item_rows(self) -> int:
        """Tile rows per item: the fewest that fill whole blocks (a partial block costs as
        much as a whole one), but at most 1/MIN_ITEMS of the batch's (threads share them)."""
        whole = self.width // math.gcd(self.width, self.tiles_x)
        return max(1, min(whole, -(-self.rows // MIN_ITEMS)))

    @property
    def items(self) -> int:
        return -(-self.rows // self.item_rows)

    def _bytes(self, elements: int) -> int:
        return -(-elements * np.dtype(self.dtype).itemsize // 64) * 64

    @property
    def u_bytes(self) -> int:
        return self._bytes(self.alpha ** 2 * self.kpad * self.cin)

    @property
    def v_bytes(self) -> int:
        return self._bytes(self.alpha ** 2 * self.cin * self.width)

    @property
    def slot_bytes(self) -> int:
        """One thread's V (packed B panels) and M (the GEMMs' products)."""
        return self.v_bytes + self._bytes(self.alpha ** 2 * self.kpad * self.width)

    @property
    def scratch_bytes(self) -> int:
        return self.u_bytes + SLOTS * self.slot_bytes


# F(4x4, 3x3) rather than F(2x2, 3x3): fewer multiplies per output, for a rounding error
# (7e-6 of the output scale in float32, 1.7e-14 in float64) within the op tests'.
TILE = 4
# The rule, measured at 1 thread against the other paths (benchmarks/results/NOTES.md):
# on a Zen 4, from 24 channels each way Winograd won at every plane from 4x4 to 32x32 and
# 16 channels broke even; on a Zen 3 (AVX2), 16 channels each way won or tied (16 -> 32
# on 4x4: 0.60 of the direct kernel's time forward, 0.76 for the input gradient; 16 -> 16
# on 8x8: 0.96-1.0; 16 -> 64 and 64 -> 16 on 32x32: 0.50-0.75) and 8 lost (1.3x). The
# digits CNN's second layer (16 -> 32) takes it; its first (1 -> 16) and LeNet (5x5) do not.
MIN_CHANNELS = 16
MIN_SIDE = 4  # one whole tile; smaller outputs were not measured
# float32 error grows with the depth summed: 4-7e-6 of the output scale at 32-64 input
# channels, 9e-6 at 128 (5.5e-5 relative on outputs above a tenth of the largest), 1.6e-5
# at 256 (9e-5, at the op tests' 1e-4): deeper float32 layers take F(2x2, 3x3), whose
# error measured 6.9e-7 at 256 channels, 9.4e-7 at 512 and 1.5e-6 at 1024.
MAX_FLOAT32_DEPTH = 128
# F(2x2, 3x3) transforms a (cin, cout) weight per call for 2.25x fewer multiplies per
# output: measured at 1 thread on a Zen 3 against the GEMM path (256 channels, 8 x 8 and
# 16 x 16 planes; 512, 4 x 4), it wins from 128 tiles in the batch (0.45-0.8 of the GEMM's
# time) and loses below 64 (1.1-14x, the transform unpaid).
MIN_DEEP_TILES = 128
MAX_SLOT_BYTES = 3 * 1024 * 1024  # a thread's V and M for up to 256 channels


def plan(n: int, cin: int, h: int, w: int, cout: int, ph: int, pw: int, flipped: bool,
         dtype: np.dtype) -> Winograd:
    """The Winograd convolution of these shapes, in tiles of TILE x TILE outputs (2 x 2
    for float32 sums deeper than MAX_FLOAT32_DEPTH)."""
    deep = np.dtype(dtype) == np.float32 and cin > MAX_FLOAT32_DEPTH
    return Winograd(n, cin, h, w, cout, ph, pw, 2 if deep else TILE, flipped, np.dtype(dtype))


def suits(conv: Winograd | None) -> bool:
    """Whether a stride-1 3 x 3 convolution (None: not one) takes the Winograd kernel."""
    return (conv is not None and min(conv.cin, conv.cout) >= MIN_CHANNELS
            and (conv.m == TILE or conv.n * conv.tiles_y * conv.tiles_x >= MIN_DEEP_TILES)
            and min(conv.ho, conv.wo) >= MIN_SIDE and conv.slot_bytes <= MAX_SLOT_BYTES
            and max(conv.cin * conv.h * conv.w, conv.cout * conv.ho * conv.wo) * conv.n
            < 2 ** 31)
