"""Bitwise ONNX ops on integers: BitwiseAnd/Or/Xor/Not and BitShift, onto graphc's
bitwise ops (integer and bool inputs; ONNX's shifts are on unsigned types)."""

from __future__ import annotations

from graphc.onnx.registry import converter
from graphc.ops import bitwise

for _op_type, _builder in (("BitwiseAnd", bitwise.bitwise_and),
                           ("BitwiseOr", bitwise.bitwise_or),
                           ("BitwiseXor", bitwise.bitwise_xor)):
    converter(_op_type)(lambda ctx, builder=_builder: builder(ctx.input(0), ctx.input(1)))


@converter("BitwiseNot")
def bitwise_not(ctx):
    return bitwise.bitwise_not(ctx.input(0))


@converter("BitShift")
def bit_shift(ctx):
    direction = ctx.attr("direction", "")
    if direction not in ("LEFT", "RIGHT"):
        raise ctx.error(f"direction must be 'LEFT' or 'RIGHT', got {direction!r}")
    builder = bitwise.left_shift if direction == "LEFT" else bitwise.right_shift
    return builder(ctx.input(0), ctx.input(1))
