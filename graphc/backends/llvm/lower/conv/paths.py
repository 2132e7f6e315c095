"""Which kernel a convolution runs on, chosen from its shapes: "winograd", "direct",
"gemm" (or, for the input gradient, "forward" and "col2im") or "loops", and the scratch
each path needs. Groups and dilation: the direct kernel (stride 1) and the GEMMs take
both (groups as GEMM batch items, dilation in the patches' index maps); Winograd's
F(4x4, 3x3) takes neither, so such layers go to the others."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm import gemm
from graphc.backends.llvm.lower.conv import direct_plan, planes, winograd_plan
from graphc.backends.llvm.lower.conv.im2col import col2im_layout
from graphc.ops.conv import Window, check_input_size, span


def forward_direct(node, x, w) -> direct_plan.Direct:
    """The forward convolution as the direct kernel sees it (x, w: shapes)."""
    n_, _, h, wd = x
    o_, cg, kh, kw = w
    window = Window.of(node)
    (ph, pw), (dh, dw), groups = window.padding, window.dilation, window.groups
    return direct_plan.Direct(n_, cg, h, wd, o_ // groups, kh, kw, ph, pw, cg * kh * kw,
                              kh * kw, False, np.dtype(node.dtype), dh, dw, groups)


def forward_winograd(node, x, w) -> winograd_plan.Winograd | None:
    """The forward convolution as the Winograd kernel sees it, if it is a stride-1 3 x 3
    one without groups or dilation (x, w: shapes)."""
    n_, c_, h, wd = x
    o_, _, kh, kw = w
    window = Window.of(node)
    if window.stride != (1, 1) or (kh, kw) != (3, 3) or not window.plain:
        return None
    ph, pw = window.padding
    return winograd_plan.plan(n_, c_, h, wd, o_, ph, pw, False, np.dtype(node.dtype))


def forward_planes(node, x, w) -> planes.Planes:
    """The forward convolution as the planes kernel sees it (x, w: shapes)."""
    window = Window.of(node)
    out_hw = [(size + 2 * p - span(k, d)) // s + 1 for size, k, s, p, d in zip(
        x[2:], w[2:], window.stride, window.padding, window.dilation, strict=True)]
    return planes.Planes.of(node, x, w, out_hw)


def forward_path(node, x, w) -> str:
    """"winograd" (winograd_plan.py), "direct" (direct_plan.py), "planes" (planes.py:
    groups of few output channels), "gemm" (the packed GEMM over image patches) or
    "loops" (integer dtypes) for a conv2d or fused_conv2d node with input shapes x, w."""
    window = Window.of(node)
    check_input_size("conv2d", x, w[2:], window.padding, window.dilation)
    if not gemm.supported(node.dtype):
        return "loops"
    if winograd_plan.suits(forward_winograd(node, x, w)):
        return "winograd"
    if window.stride == (1, 1) and direct_plan.suits(forward_direct(node, x, w)):
        return "direct"
    plan = forward_planes(node, x, w)
    if planes.suits(plan, plan.forward_slot):
        return "planes"
    return "gemm"


def forward_scratch(node, shapes) -> int:
    x, w, out = shapes[0], shapes[1], shapes[-1]
    path = forward_path(node, x, w)
    groups = Window.of(node).groups
    if path == "winograd":
        return forward_winograd(node, x, w).scratch_bytes
    if path == "direct":
        return forward_direct(node, x, w).scratch_bytes
    if path == "planes":
        return planes.SLOTS * forward_planes(node, x, w).forward_slot
    if path == "gemm":
        return gemm.scratch_bytes(x[0] * groups, w[0] // groups, out[2] * out[3],
                                  w[1] * w[2] * w[3], node.dtype)
    return 0


FEW_CHANNELS = 16  # input gradients with fewer input channels (per group) go through col2im


def _flipped_padding(node, w) -> tuple[int, int]:
    """The padding of g in the input gradient as a stride-1 convolution: span - 1 - p."""
    window = Window.of(node)
    return tuple(span(k, d) - 1 - p for k, d, p in
                 zip(w[2:], window.dilation, window.padding, strict=True))


def grad_input_direct(node, g, w) -> direct_plan.Direct:
    """The input gradient (stride 1, padding below the kernel's span) as the direct
    kernel's convolution: g padded by span - 1 - padding, the flipped kernel, channels
    swapped (within each group)."""
    n_, _, ho, wo = g
    o_, cg, kh, kw = w
    window = Window.of(node)
    (dh, dw), groups = window.dilation, window.groups
    ph, pw = _flipped_padding(node, w)
    return direct_plan.Direct(n_, o_ // groups, ho, wo, cg, kh, kw, ph, pw, kh * kw,
                              cg * kh * kw, True, np.dtype(node.dtype), dh, dw, groups)


def grad_input_winograd(node, g, w) -> winograd_plan.Winograd | None:
    """The input gradient of a stride-1 3 x 3 convolution (padding below 3, no groups or
    dilation) as the Winograd kernel's convolution: g padded by 2 - padding, the flipped
    kernel, channels swapped."""
    n_, o_, ho, wo = g
    _, c_, kh, kw = w
    window = Window.of(node)
    (sh, sw), (ph, pw) = window.stride, window.padding
    if (sh, sw) != (1, 1) or (kh, kw) != (3, 3) or ph > 2 or pw > 2 or not window.plain:
        return None
    return winograd_plan.plan(n_, o_, ho, wo, c_, 2 - ph, 2 - pw, True, np.dtype(node.dtype))


def grad_input_path(node, g, w) -> str:
    """"winograd" (winograd_plan.py); "direct" (direct_plan.py); "forward": the packed-GEMM
    forward convolution of g with the flipped kernel (stride 1, padding below the kernel's
    span, enough channels to share the patch packing); "col2im": a GEMM into patch
    columns, then summed back into place; "loops" (integer dtypes). g and w are the input
    shapes."""
    if not gemm.supported(node.dtype):
        return "loops"
    window = Window.of(node)
    _, channels, _, _ = w
    if winograd_plan.suits(grad_input_winograd(node, g, w)):
        return "winograd"
    if window.stride == (1, 1) and min(_flipped_padding(node, w)) >= 0:
        if direct_plan.suits(grad_input_direct(node, g, w)):
            return "direct"
        if channels >= FEW_CHANNELS:
            return "forward"
    return "col2im"


def grad_input_scratch(node, shapes) -> int:
    g, w, out = shapes
    path = grad_input_path(node, g, w)
    groups = Window.of(node).groups
    if path == "winograd":
        return grad_input_winograd(node, g, w).scratch_bytes
    if path == "direct":
        return grad_input_direct(node, g, w).scratch_bytes
    if path == "forward":
        return gemm.scratch_bytes(out[0] * groups, out[1] // groups, out[2] * out[3],
                                  (w[0] // groups) * w[2] * w[3], node.dtype)
    if path == "col2im":
        return col2im_layout(node.dtype, g, w, groups)[1]
    return 0
