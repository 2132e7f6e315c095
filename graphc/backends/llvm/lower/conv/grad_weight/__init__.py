"""conv2d_grad_weight: gw[o, c, i, j] = sum over n, y, x of g[n, o, y, x] * x[n, c, shifted].

Four paths for the float dtypes the op accepts (`grad_weight_path` picks one from the
shapes and says why); this module holds the rule and the GEMM path, channels.py and
shifted.py the direct paths, common.py what those two share:
- "channels" (stride 1, planes of at most CHANNELS_PIXELS output pixels): g transposed to
  gT[n, pixel, o]; vectors over output channels times broadcast image values, for only
  the (pixel, tap) pairs whose input pixel lies inside the image.
- "shifted" (stride 1, small problems): each input plane is copied kw times into scratch,
  zero-padded and shifted by a kernel column, with the output's row pitch:
  S[n, c, j][yy * Wo + xx] = x_padded[n, c, yy, xx + j]. Every tap then reads one
  contiguous run: gw[o, c, i, j] = sum over n, q of g[n, o, q] * S[n, c, j][q + i * Wo],
  q over the Ho * Wo output pixels, summed by vector FMAs into registers holding a block
  of output channels times taps (no packing, no junk lanes).
- "gemm": one GEMM, gw (O x CKK) = g (O x N*HoWo) @ patches(x) (N*HoWo x CKK), whose depth
  runs over the batch and the image; a long depth is cut into image chunks (batch items
  of the GEMM, so threads do not pack the same patches) whose partial sums are added in
  chunk order. Groups are batch items of it, dilation steps its patches' index map.
- "planes" (groups of few output channels, depthwise above all; any stride and dilation):
  ../planes.py, items by input channel, shifted copies of each image's plane.
The channels and shifted paths take plain convolutions only (no groups, no dilation).
Every gw element (every chunk's partial sum) is summed by one thread in a fixed order,
so results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm import gemm
from graphc.backends.llvm.codegen.irtypes import I8, i64
from graphc.backends.llvm.codegen.vector import accumulators, vector_bytes
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.conv import CONVOLUTION_IR
from graphc.backends.llvm.lower.conv.grad_weight.channels import Channels, channels_grad_weight
from graphc.backends.llvm.lower.conv.grad_weight.shifted import Shifted, shifted_grad_weight
from graphc.backends.llvm.lower.conv.planes import SLOTS, Planes
from graphc.backends.llvm.lower.conv.planes import grad_weight as planes_grad_weight
from graphc.backends.llvm.lower.conv.planes import suits as planes_suits
from graphc.ops.conv import Window

__all__ = ["Channels", "Shifted", "grad_weight_path"]

SHIFTED_BYTES = 4 * 1024 * 1024  # the largest shifted copy the "shifted" path makes
CHANNELS_PIXELS = 16  # the channels path unrolls pixels times taps: small planes only


def grad_weight_path(dtype, x_shape, g_shape, kernel, stride, padding) -> str:
    """"channels", "shifted" or "gemm" (see the module docstring), for stride 1:
    - planes of at most CHANNELS_PIXELS output pixels (and kernels of at most
      accumulators() taps) take the channels path: a vector over pixels multiplies
      padding there too (4x4 planes, 3x3 kernels, padding 1: 44 of 144 products), a
      vector over output channels skips it (the digits CNN's second layer on Zen 3,
      two vectors of pixels: 0.11 ms against the shifted path's 0.31);
    - other problems whose shifted copy stays in the caches (at most SHIFTED_BYTES) take
      the shifted path, which does no packing and only useful FMAs, where the GEMM packs
      image patches (small planes: mostly padding and gathers) and fills 8 x 32 register
      tiles that few output channels leave half empty (the LeNet and digits layers);
    - big ones (the 32x32, 64-channel benchmark layer: a 27 MB shifted copy) and strided ones
      keep the GEMM, whose packing is amortized over many channels."""
    n_, c_, h, _ = x_shape
    _, o_, ho, wo = g_shape
    if tuple(stride) != (1, 1) or n_ * c_ * o_ * ho * wo == 0:
        return "gemm"
    itemsize = np.dtype(dtype).itemsize
    if ho * wo <= CHANNELS_PIXELS and kernel[0] * kernel[1] <= accumulators():
        return "channels"
    shifted = n_ * c_ * kernel[1] * (h + 2 * padding[0]) * wo * itemsize
    return "shifted" if shifted <= SHIFTED_BYTES else "gemm"


def _plan(node, x_shape, g_shape) -> Channels | Shifted | Planes | None:
    """The plan of the channels, shifted or planes path, or None for the GEMM. Groups
    and dilation: the planes path for groups of few output channels, else the GEMM."""
    window = Window.of(node)
    if not window.plain:
        w_shape = (g_shape[1], x_shape[1] // window.groups, *window.kernel)
        plan = Planes.of(node, x_shape, w_shape, g_shape[2:])
        return plan if planes_suits(plan, plan.weight_slot) else None
    path = grad_weight_path(node.dtype, x_shape, g_shape, window.kernel, window.stride,
                            window.padding)
    plans = {"channels": Channels, "shifted": Shifted}
    if path not in plans:
        return None
    return plans[path].of(node.dtype, x_shape, g_shape, window.kernel, window.padding)


def _grad_weight_scratch(node, shapes) -> int:
    x, g, out = shapes
    plan = _plan(node, x, g)
    if isinstance(plan, Planes):
        return SLOTS * plan.weight_slot
    if plan is not None:
        return plan.end
    return _split_layout(node.dtype, x, g, out, Window.of(node).groups)[2]


@lowering("conv2d_grad_weight", scratch=_grad_weight_scratch, splits_own_work=True,
          ir_bytes=CONVOLUTION_IR)
def emit_conv2d_grad_weight(k, node, out, ins, scratch) -> None:
    """gw[o, c, i, j] = sum over n, y, x of g[n, o, y, x] * x[n, c, shifted]."""
    x, g = ins
    plan = _plan(node, x.shape, g.shape)
    if isinstance(plan, Channels):
        channels_grad_weight(k, plan, x, g, out, scratch)
    elif isinstance(plan, Shifted):
        shifted_grad_weight(k, plan, x, g, out, scratch)
    elif isinstance(plan, Planes):
        planes_grad_weight(k, plan, x, g, out, scratch)
    else:
        _gemm_grad_weight(k, x, g, out, Window.of(node), scratch)


SPLIT_FROM = 1 << 14  # depth (images x output pixels) from which the GEMM is split
SPLITS = 4  # the most image chunks of a split GEMM


def _splits(n: int, depth: int) -> int:
    """Image chunks of the GEMM path: the largest divisor of the batch up to SPLITS once
    the depth is long. Fixed by the shapes (not the thread count), so the sums' order and
    the bits are the same on any number of threads."""
    if depth < SPLIT_FROM:
        return 1
    return max(s for s in range(1, SPLITS + 1) if n % s == 0)


def _split_layout(dtype, x_shape, g_shape, out_shape, groups: int = 1) -> tuple[int, int, int]:
    """(chunks, byte offset of the chunks' partial sums in the scratch, scratch bytes)."""
    n_, _, _, _ = x_shape
    o_, c_, kh, kw = out_shape
    depth = n_ * g_shape[2] * g_shape[3]
    splits = _splits(n_, depth)
    at = gemm.scratch_bytes(splits * groups, o_ // groups, c_ * kh * kw, depth // splits,
                            dtype)
    partials = splits * o_ * c_ * kh * kw * np.dtype(dtype).itemsize if splits > 1 else 0
    return splits, at, at + partials


def _gemm_grad_weight(k, x, g, out, window: Window, scratch) -> None:
    """gw[group] (O/G x C/G KK) = g[group] (O/G x N*HoWo) @ patches of x[group]
    (N*HoWo x C/G KK): a GEMM batched over the groups whose depth runs over the batch
    and the image. A long depth is split into image chunks, batch items of the GEMM too
    (every thread then packs only its own chunks' patches, where splitting rows would
    have every thread pack them all), summed after a barrier in chunk order."""
    n_, c_, h, wd = x.shape
    o_, cg, kh, kw = out.shape
    ho, wo = g.shape[2:]
    (sh, sw), (ph, pw), (dh, dw), groups = (window.stride, window.padding, window.dilation,
                                            window.groups)
    og = o_ // groups
    dt = out.dtype
    ckk = cg * kh * kw
    splits, at, _ = _split_layout(dt, x.shape, g.shape, out.shape, groups)
    chunk = n_ // splits

    # Column (n, yx) of row o is g[n, o, yx]; chunk s starts at image s * chunk.
    grads = gemm.Rows(g.ptr, g.dtype, (chunk * o_ * ho * wo, og * ho * wo), ho * wo,
                      gemm.Affine((chunk, ho * wo), ((o_ * ho * wo,), (1,))))
    rows = gemm.Affine((chunk, ho, wo), ((c_ * h * wd, 0, 0), (0, sh, 0), (0, 0, sw)),
                       (0, -ph, -pw))
    cols = gemm.Affine((cg, kh, kw), ((h * wd, 0, 0), (0, dh, 0), (0, 0, dw)))
    patches = gemm.Patches(x.ptr, x.dtype, x.size, (chunk * c_ * h * wd, cg * h * wd), h, wd,
                           rows, cols)
    b = k.b
    partials = out.ptr if splits == 1 else b.gep(scratch, [i64(at)], inbounds=True,
                                                  source_etype=I8)
    # Item (chunk s, group) writes gw's group block into chunk s's partial sums.
    gm = gemm.Gemm((splits, groups), og, ckk, chunk * ho * wo, dt, grads, patches, partials,
                   ckk, og * ckk)
    gemm.emit(k, gm, scratch)
    if splits == 1:
        return
    k.mc.wait_all(b, k.nthreads)  # every chunk's partial sums are written
    start, stop = k.split(o_ * ckk, 16)
    with k.loop(start, stop, "e") as e:
        total = k.load(partials, dt, e)
        for s_ in range(1, splits):
            total = b.fadd(total, k.load(partials, dt, b.add(e, i64(s_ * o_ * ckk))))
        k.store(total, out.ptr, dt, e)
