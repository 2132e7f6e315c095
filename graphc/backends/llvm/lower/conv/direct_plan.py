"""Direct stride-1 convolutions: the forward convolution and the input gradient of small
convolutions, where packing image patches for the GEMM costs more than the arithmetic
(dilated taps and channel groups included: each (image, group) is one convolution).

Each image n is copied into per-thread scratch as zero-padded planes (hp x wp, a row's
right padding shared with the next row's left; slack after each plane so vector loads
never leave the buffer). Two register-blocked variants then run over the taps (c, ky, kx)
in that order, kernel rows that meet only padding skipped:
- "positions": vectors over the flattened plane, output position j = y * wp + x
  (columns x >= wo are junk, computed and dropped), a 1-D convolution with contiguous
  unaligned loads, out[k, j] = sum of w(k, c, ky, kx) * P[c, j + ky * wp + kx], the
  weights broadcast; blocks go to a per-thread tile whose valid columns are copied out.
  No waste across output channels: for few channels (LeNet's first layer, 6).
- "channels": vectors over output channels (weights packed channel-innermost per
  thread), the image values broadcast, blocks of whole output rows (or row segments);
  16 x 16 blocks are transposed in registers and stored as contiguous pixels of each
  channel's plane. No junk positions: for small planes and channel counts near a
  multiple of the vector width.
A cost model in cycles per tap picks the variant and block sizes. Threads split
(image, block of output channels) items; each output element sums its terms in one fixed
order within one item, so results do not depend on the thread count. The input gradient
is the same kernel on g, padded by kernel - 1 - padding, with the flipped kernel and the
channel roles swapped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from graphc.backends.llvm.codegen.arith import round_up
from graphc.backends.llvm.codegen.vector import accumulators, vector_bytes

SLOTS = 8  # per-thread scratch regions; threads beyond them sit out
MAX_SLOT_BYTES = 512 * 1024  # one thread's padded image and tile or weights stay in L2
MAX_DEPTH = 400  # terms per output (cin x kh x kw) up to which the direct kernel is taken
MAX_GRAD_DEPTH = 600  # the same for input gradients (see suits)
MAX_PLANE = 256  # output pixels up to which the direct kernel is taken
FEW_TAPS, MANY_CHANNELS = 32, 32  # where the GEMM's tiles are full and its packing cheap
MAX_KW = 16  # the widest kernel taken (blocks once unrolled its columns; wider ones: GEMM)
FMA_CHAINS = 8  # independent accumulators that keep the FMA pipes busy (latency x width)
BLOCK_OVERHEAD = 2  # cycles per tap of a block beyond its FMAs (address arithmetic, loop)
STORE_CYCLES = 2  # cycles per output vector stored (positions: copied out of the tile)
TRANSPOSE_CYCLES = 5  # cycles per vector of a register transpose (shuffles and a store)
CHANNEL_GROUPS = 3  # the most channel vectors one "channels" item accumulates
MIN_ITEMS = 8  # fewer (image, channel block) items than this are split into row bands


def _cycles(accumulators: int, loads: int) -> float:
    """Estimated cycles of one kernel tap of a register block: its FMAs (one vector FMA
    a cycle), at least FMA_CHAINS of them (latency), its loads at two a cycle, and a
    fixed overhead."""
    return max(accumulators, FMA_CHAINS, loads / 2) + BLOCK_OVERHEAD


def balanced(total: int, most: int) -> list[int]:
    """total split into the fewest parts of at most `most`, as equal as possible, larger
    parts first (their sizes are compile-time constants)."""
    count = -(-total // most)
    size = -(-total // count)
    return [size] * (count - 1) + [total - size * (count - 1)]


@dataclass(frozen=True)
class Direct:
    """One stride-1 convolution as the kernel computes it: an image (n, cin, h, w) padded
    by (ph, pw), `cout` output channels, a kh x kw kernel with taps dh, dw apart
    (dilation) whose element (k, c, ky, kx) is read at k * k_stride + c * c_stride + tap,
    tap = ky * kw + kx (or, `flipped`, the tap mirrored in both axes: the input gradient).
    With `groups`, the images hold groups x cin channels and the output groups x cout:
    each group is a convolution of its own, with the group's own cout x cin kernels (one
    group's weights after another); n counts whole images."""

    n: int
    cin: int
    h: int
    w: int
    cout: int
    kh: int
    kw: int
    ph: int
    pw: int
    k_stride: int
    c_stride: int
    flipped: bool
    dtype: np.dtype
    dh: int = 1
    dw: int = 1
    groups: int = 1

    @property
    def span_h(self) -> int:
        return self.dh * (self.kh - 1) + 1

    @property
    def span_w(self) -> int:
        return self.dw * (self.kw - 1) + 1

    @property
    def images(self) -> int:
        """The (image, group) pairs: the convolutions of cin channels the items run over."""
        return self.n * self.groups

    @property
    def group_weights(self) -> int:
        """Weights of one group (the stride between groups' kernels)."""
        return self.cout * self.cin * self.kh * self.kw

    @property
    def lanes(self) -> int:
        return vector_bytes() // np.dtype(self.dtype).itemsize

    @property
    def hp(self) -> int:
        return self.h + 2 * self.ph

    @property
    def wp(self) -> int:
        """The row stride of padded planes: a row's right padding is the next row's left
        padding (reads past a row's end land in zeros), so pw zeros between rows suffice
        while every output column still fits in a row."""
        return max(self.w + self.pw, self.w + 2 * self.pw - self.span_w + 1)

    @property
    def ho(self) -> int:
        return self.hp - self.span_h + 1

    @property
    def wo(self) -> int:
        return self.w + 2 * self.pw - self.span_w + 1

    @property
    def vectors(self) -> int:
        """Vectors covering the output positions j < ho * wp of one plane."""
        return -(-self.ho * self.wp // self.lanes)

    @property
    def row(self) -> int:
        """Elements of whole vectors covering a plane's output positions."""
        return self.vectors * self.lanes

    @property
    def tile_plane(self) -> int:
        """Elements of one tile plane: the vectors of a band of rows (whole vectors from
        the band's first row, so a band may need one vector past `row`)."""
        return self.row + self.lanes

    @property
    def plane(self) -> int:
        """Elements of one padded image plane in scratch, with the slack the last vector's
        farthest tap reads."""
        return round_up(self.tile_plane + (self.span_h - 1) * self.wp + self.span_w - 1,
                        self.lanes)

    @property
    def taps(self) -> int:
        return self.cin * self.kh * self.kw

    def active_rows(self, y0: int, y1: int) -> int:
        """Kernel rows a block of output rows [y0, y1] runs (see _kernel_rows): those with
        ky * dh + y - ph inside the image for some y in the block."""
        first = max(0, -(-(self.ph - y1) // self.dh))
        last = min(self.kh, (self.ph + self.h - 1 - y0) // self.dh + 1)
        return max(0, last - first)

    @property
    def positions_blocks(self) -> tuple[float, int, int]:
        return _positions_model(self)

    def _positions_blocks(self) -> tuple[float, int, int]:
        """(estimated cycles per image, R vectors, kb channels) of the best "positions"
        register block; channel blocks are balanced, the vectors left at a plane's end
        form a smaller last block (ties: fewer loads)."""
        best = None
        for r in range(1, min(self.vectors, accumulators()) + 1):
            sizes = balanced(self.cout, accumulators() // r)
            per_tap = {v: sum(_cycles(v * kb, v + kb) for kb in sizes)
                       for v in {r, self.vectors % r or r}}
            cost = self.cout * self.vectors * STORE_CYCLES
            for j in range(0, self.vectors, r):
                vectors = min(r, self.vectors - j)
                y0 = j * self.lanes // self.wp
                y1 = min((j + vectors) * self.lanes - 1, self.ho * self.wp - 1) // self.wp
                cost += per_tap[vectors] * self.cin * self.kw * self.active_rows(y0, y1)
            best = min(best or (cost, r + sizes[0], r, sizes[0]), (cost, r + sizes[0], r,
                                                                    sizes[0]))
        return best[0], best[2], best[3]

    @property
    def channel_vectors(self) -> int:
        return -(-self.cout // self.lanes)

    @property
    def channel_blocks(self) -> tuple[float, int, int, int]:
        return _channels_model(self)

    def _channel_blocks(self) -> tuple[float, int, int, int]:
        """(estimated cycles per image, G channel vectors per item, m rows, s columns) of
        the best "channels" register block: m whole rows (s = wo) when a row fits,
        else row segments of s pixels (m = 1); G * m * s accumulators at most."""
        best = None
        for g in range(1, min(self.channel_vectors, CHANNEL_GROUPS) + 1):
            most = accumulators() // g
            if self.wo <= most:
                m, s = min(self.ho, most // self.wo), self.wo
                blocks, y0 = [], 0  # (pixels, active kernel rows)
                for rows in balanced(self.ho, m):
                    blocks.append((rows * s, self.active_rows(y0, y0 + rows - 1)))
                    y0 += rows
            else:
                m, s = 1, balanced(self.wo, most)[0]
                blocks = [(pixels, self.active_rows(y, y)) for y in range(self.ho)
                          for pixels in balanced(self.wo, most)]
            cost = 0
            for vectors in balanced(self.channel_vectors, g):
                for pixels, rows in blocks:
                    taps = self.cin * self.kw * rows
                    cost += _cycles(vectors * pixels, vectors + pixels) * taps
                    cost += vectors * -(-pixels // self.lanes) * self.lanes * TRANSPOSE_CYCLES
            best = min(best or (cost, g, m, s), (cost, g, m, s))
        return best

    @property
    def variant(self) -> str:
        """"positions" or "channels", whichever the cost model expects to be faster (groups:
        positions, whose weights are read in place for each group)."""
        if self.groups == 1 and self.channel_blocks[0] < self.positions_blocks[0]:
            return "channels"
        return "positions"

    @property
    def second_offset(self) -> int:
        """Byte offset, in a thread's scratch, of the tile ("positions") or the packed
        weights ("channels") after the padded planes."""
        return round_up(self.cin * self.plane * np.dtype(self.dtype).itemsize, vector_bytes())

    @property
    def slot_bytes(self) -> int:
        """One thread's scratch: padded image planes, then the tile or packed weights."""
        if self.variant == "positions":
            second = self.positions_blocks[2] * self.tile_plane
        else:
            second = self.taps * self.channel_vectors * self.lanes
        return self.second_offset + round_up(second * np.dtype(self.dtype).itemsize, vector_bytes())

    @property
    def scratch_bytes(self) -> int:
        return SLOTS * self.slot_bytes


@functools.lru_cache(maxsize=256)
def _positions_model(conv: Direct) -> tuple[float, int, int]:
    return conv._positions_blocks()  # cached: the rule, the scratch and the kernel ask


@functools.lru_cache(maxsize=256)
def _channels_model(conv: Direct) -> tuple[float, int, int, int]:
    return conv._channel_blocks()


def suits(conv: Direct) -> bool:
    """Whether the direct kernel is the better path (float dtypes, a thread's scratch
    within MAX_SLOT_BYTES, at most MAX_KW kernel columns). Small convolutions take it:
    few terms per output (cin * kh * kw <= MAX_DEPTH) or small output planes
    (ho * wo <= MAX_PLANE), where the GEMM packs patches for little arithmetic or fills
    few of its register tiles (the LeNet and digits layers). Exception: large planes with
    few terms and many output channels (CIFAR's first layer, 3x3x3 -> 64 channels on
    32 x 32), where the GEMM is faster. Large convolutions keep the GEMM for the forward
    pass, while input gradients take the direct kernel up to MAX_GRAD_DEPTH terms (there
    the GEMM packs patches of the gradient). The measurements behind each threshold:
    benchmarks/results/NOTES.md."""
    depth = MAX_GRAD_DEPTH if conv.flipped else MAX_DEPTH
    small = conv.taps <= depth or conv.ho * conv.wo <= MAX_PLANE
    gemm_shaped = (conv.taps < FEW_TAPS and conv.cout >= MANY_CHANNELS
                   and conv.ho * conv.wo > MAX_PLANE)
    fits = (conv.ho > 0 and conv.wo > 0 and conv.kw <= MAX_KW
            and conv.second_offset <= MAX_SLOT_BYTES and conv.slot_bytes <= MAX_SLOT_BYTES)
    return np.dtype(conv.dtype).kind == "f" and small and not gemm_shaped and fits
