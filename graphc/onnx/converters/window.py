"""The window attributes convolutions and pools share: kernel, strides, dilations and the
pads ONNX gives as begins then ends (or auto_pad computes), checked against what graphc's
conv and pool converters take."""

from __future__ import annotations

import math
from dataclasses import dataclass

from graphc.onnx.errors import Unsupported


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begins: tuple[int, ...]
    ends: tuple[int, ...]


def window_of(ctx, spatial: tuple, kernel: tuple[int, ...]) -> Window:
    """The node's window over input spatial dims `spatial` with this kernel."""
    rank = len(kernel)
    strides = tuple(ctx.attr("strides", (1,) * rank))
    dilations = tuple(ctx.attr("dilations", (1,) * rank))
    if len(strides) != rank or len(dilations) != rank or min(strides + dilations) < 1:
        raise ctx.error(f"strides {strides} and dilations {dilations} must be {rank} "
                        "positive ints")
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        pads = tuple(ctx.attr("pads", (0,) * 2 * rank))
        if len(pads) != 2 * rank or min(pads) < 0:
            raise ctx.error(f"pads {pads} must be {2 * rank} nonnegative ints")
        begins, ends = pads[:rank], pads[rank:]
    elif auto_pad == "VALID":
        begins = ends = (0,) * rank
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if not all(isinstance(d, int) for d in spatial):
            raise Unsupported(f"auto_pad {auto_pad} over symbolic spatial dims {spatial}")
        totals = [max((math.ceil(d / s) - 1) * s + (k - 1) * dl + 1 - d, 0)
                  for d, s, k, dl in zip(spatial, strides, kernel, dilations)]
        small = tuple(t // 2 for t in totals)
        large = tuple(t - t // 2 for t in totals)
        begins, ends = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    else:
        raise ctx.error(f"unknown auto_pad {auto_pad!r}")
    return Window(tuple(kernel), strides, dilations, tuple(begins), tuple(ends))
