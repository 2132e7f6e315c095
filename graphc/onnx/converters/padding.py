"""Pad onto gc.pad: modes constant, reflect, edge (gc.pad's "replicate") and wrap
("circular"); the pads (and, from opset 11, the constant value, and from opset 18 the
axes) as attributes or inputs known at import. Negative pads crop, in ONNX as in gc.pad."""

from __future__ import annotations

from graphc.onnx.converters.common import axes_of, number
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.ops.pad import pad

_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
          "wrap": "circular"}


@converter("Pad")
def pad_(ctx):
    x = ctx.input(0)
    mode = ctx.attr("mode", "constant")
    if mode not in _MODES:
        raise ctx.error(f"unknown mode {mode!r}")
    if ctx.opset < 11:
        pads, value = tuple(ctx.attr("pads", ())), ctx.attr("value", 0.0)
    else:
        pads = ctx.static_ints(1, "pads")
        value = 0
        if ctx.has_input(2):
            given = ctx.static(2, "constant_value")
            if given.size != 1:
                raise ctx.error(f"constant_value must be one number, got shape {given.shape}")
            value = given.reshape(-1)[0]
    axes = ctx.static_ints(3, "axes", None) if ctx.has_input(3) else None
    axes = tuple(range(x.ndim)) if axes is None else axes_of(ctx, axes, x.ndim)
    if len(pads) != 2 * len(axes):
        raise ctx.error(f"pads {pads} must hold a begin and an end for each of the axes "
                        f"{axes}")
    before, after = dict(zip(axes, pads[:len(axes)])), dict(zip(axes, pads[len(axes):]))
    first = min(axes, default=x.ndim)
    widths = []
    for axis in range(x.ndim - 1, first - 1, -1):  # gc.pad: from the last axis backwards
        widths += [before.get(axis, 0), after.get(axis, 0)]
    if not any(widths):
        return x
    if mode != "constant" and any(w < 0 for w in widths):
        raise Unsupported(f"negative pads {pads} in mode {mode!r}")
    value = number(value, x.dtype) if mode == "constant" else None
    return pad(x, tuple(widths), mode=_MODES[mode], value=value)
