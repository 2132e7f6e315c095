"""The "channels" path, for planes of few output pixels (CHANNELS_PIXELS): g transposed
so vectors run over output channels, times broadcast image values, for only the (pixel,
tap) pairs whose input pixel lies inside the image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import i64
from graphc.backends.llvm.codegen.vector import accumulators, fma_of, splat, transpose, vector_bytes
from graphc.backends.llvm.lower.conv.grad_weight.common import (
    Shapes,
    Vectors,
    by_size,
)


@dataclass(frozen=True)
class Channels(Shapes):
    """The channels path: g transposed to gT[n, q, o] (output channels padded to whole
    vectors), then per (vector group of output channels, input channel) a register block
    acc[tap][vector] += gT[n, q, vector] * x[n, c, q's input pixel for tap], over the
    images and, unrolled, the (pixel, tap) pairs that read inside the image."""

    group: int  # output channel vectors per block

    @staticmethod
    def of(dtype, x_shape, g_shape, kernel, padding) -> Channels:
        vectors = -(-g_shape[1] // (vector_bytes() // np.dtype(dtype).itemsize))
        kh, kw = kernel
        return Channels(*Shapes.values(dtype, x_shape, g_shape, kernel, padding),
                        min(vectors, accumulators() // (kh * kw)))

    @property
    def lanes(self) -> int:
        return vector_bytes() // self.dtype.itemsize

    @property
    def vectors(self) -> int:
        """Vectors of output channels (the last one padded with zeros)."""
        return -(-self.o // self.lanes)

    @property
    def end(self) -> int:
        """Scratch bytes: gT."""
        return self.n * self.ho * self.wo * self.vectors * vector_bytes()


def channels_grad_weight(k, p: Channels, x, g, out, scratch) -> None:
    """Threads transpose g by images, meet at a barrier, then split the blocks; each gw
    element is summed by one thread over images, then pixels, whatever the thread count."""
    _transpose_grads(k, p, g, scratch)
    b = k.b
    k.mc.wait_all(b, k.nthreads)  # blocks read gT rows other threads wrote
    groups = -(-p.vectors // p.group)
    start, stop = k.split(groups * p.c)
    with k.loop(start, stop, "block") as item:
        first = b.mul(b.udiv(item, i64(p.c)), i64(p.group))
        c = b.urem(item, i64(p.c))
        by_size(b, first, p.group, p.vectors,
                 lambda vectors: _channel_block(k, p, x, out, scratch, first, c, vectors))


def _transpose_grads(k, p: Channels, g, scratch) -> None:
    """gT[n, q, o] = g[n, o, q], zero for the padding channels o >= O: per image, vector
    of output channels and vector of pixels, one masked load per channel and a shuffle
    transpose."""
    b = k.b
    v = Vectors(k, p.dtype)
    pixels = p.ho * p.wo
    width = p.vectors * v.lanes
    none = ir.Constant(v.mask, None)
    start, stop = k.split(p.n)
    with k.loop(start, stop, "n") as n:
        with k.loop(0, p.vectors, "ov") as vector:
            base = b.add(b.mul(n, i64(pixels * width)), b.mul(vector, i64(v.lanes)))
            for q0 in range(0, pixels, v.lanes):
                count = min(v.lanes, pixels - q0)
                rows = []
                for lane in range(v.lanes):
                    o = b.add(b.mul(vector, i64(v.lanes)), i64(lane))
                    inside = b.icmp_signed("<", o, i64(p.o))
                    at = b.select(inside, b.add(b.mul(b.add(b.mul(n, i64(p.o)), o),
                                                      i64(pixels)), i64(q0)), i64(0))
                    rows.append(b.call(v.load, [b.gep(g.ptr, [at], source_etype=v.t), v.align,
                                                b.select(inside, v.lanes_below(count), none),
                                                v.zero]))
                for q, column in enumerate(transpose(b, rows)[:count], start=q0):
                    at = b.gep(scratch, [b.add(base, i64(q * width))], source_etype=v.t)
                    b.store(column, at, align=vector_bytes())


def _channel_block(k, p: Channels, x, out, scratch, first, c, vectors: int) -> None:
    """gw[o, c, tap] for the output channel vectors first.. (`vectors` of them)."""
    b = k.b
    v = Vectors(k, p.dtype)
    fma = fma_of(k.mc, v.vec)
    taps = p.kh * p.kw
    pixels = p.ho * p.wo
    width = p.vectors * v.lanes
    accs = [[k.alloca(v.vec) for _ in range(vectors)] for _ in range(taps)]
    for row in accs:
        for acc in row:
            b.store(v.zero, acc)
    with k.loop(0, p.n, "n") as n:
        image = b.mul(b.add(b.mul(n, i64(p.c)), c), i64(p.h * p.w))
        grads = b.add(b.mul(n, i64(pixels * width)), b.mul(first, i64(v.lanes)))
        for q in range(pixels):
            y, xx = divmod(q, p.wo)
            gv = [b.load(b.gep(scratch, [b.add(grads, i64(q * width + u * v.lanes))],
                               source_etype=v.t), typ=v.vec, align=vector_bytes())
                  for u in range(vectors)]
            for tap in range(taps):
                iy, ix = y + tap // p.kw - p.ph, xx + tap % p.kw - p.pw
                if not (0 <= iy < p.h and 0 <= ix < p.w):
                    continue  # padding: a zero product
                value = k.load(x.ptr, p.dtype, b.add(image, i64(iy * p.w + ix)))
                broadcast = splat(b, value, v.vec)
                for u in range(vectors):
                    acc = accs[tap][u]
                    b.store(b.call(fma, [gv[u], broadcast, b.load(acc, typ=v.vec)]), acc)
    # Through a stack tile, so the output channels past O (padding) are one loop bound.
    tile = k.alloca(ir.ArrayType(v.vec, taps * vectors))
    for tap, row in enumerate(accs):
        for u, acc in enumerate(row):
            b.store(b.load(acc, typ=v.vec), b.gep(tile, [i64(0), i64(u * taps + tap)]))
    o0 = b.mul(first, i64(v.lanes))
    count = b.sub(i64(p.o), o0)
    count = b.select(b.icmp_signed("<", count, i64(vectors * v.lanes)), count,
                     i64(vectors * v.lanes))
    with k.loop(0, count, "o") as o:
        u, lane = b.udiv(o, i64(v.lanes)), b.urem(o, i64(v.lanes))
        at = b.mul(b.add(b.mul(b.add(o0, o), i64(p.c)), c), i64(taps))
        for tap in range(taps):
            vector = b.load(b.gep(tile, [i64(0), b.add(b.mul(u, i64(taps)), i64(tap))]))
            k.store(b.extract_element(vector, lane), out.ptr, p.dtype, b.add(at, i64(tap)))
