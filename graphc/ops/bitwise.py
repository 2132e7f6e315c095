"""Bitwise ops and shifts on integer dtypes (`& | ^ ~ << >>` on graph values). Of bools,
& | ^ ~ are the logical ops (as NumPy and PyTorch); a bool with an int is 0 or 1.

Shifts follow NumPy and PyTorch: a shift by a negative count or by the width or more
gives 0 (left) or the sign fill, -1 or 0 (right); right shifts of signed types are
arithmetic. They are typed ops (Elementwise.typed): computed in their own dtype in any
fused kernel.
"""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.ir.node import Node
from graphc.ops.elementwise import define, typed_apply, values
from graphc.ops.scalar import typed
from graphc.ops.scalar_functions import (
    BitwiseAnd,
    BitwiseNot,
    BitwiseOr,
    BitwiseXor,
    LeftShift,
    RightShift,
)

__all__ = [  # the public builders (graphc/dsl.py)
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "left_shift", "right_shift",
    "bitwise_left_shift", "bitwise_right_shift",
]

_BINARY = [("bitwise_and", np.bitwise_and, BitwiseAnd, "logical_and"),
           ("bitwise_or", np.bitwise_or, BitwiseOr, "logical_or"),
           ("bitwise_xor", np.bitwise_xor, BitwiseXor, "logical_xor")]

for _name, _reference, _function, _ in _BINARY:
    define(_name, 2, lambda a, b, dtype=None, f=_reference: f(a, b),
           lambda a, b, dtype, f=_function: typed(f, dtype)(a, b), "bitwise", False,
           typed=True)
define("bitwise_not", 1, lambda a, dtype=None: np.invert(a),
       lambda a, dtype: typed(BitwiseNot, dtype)(a), "bitwise", False, typed=True)
define("left_shift", 2, lambda a, b, dtype=None: np.left_shift(a, b),
       lambda a, b, dtype: typed(LeftShift, dtype)(a, b), "shift", False, typed=True)
define("right_shift", 2, lambda a, b, dtype=None: np.right_shift(a, b),
       lambda a, b, dtype: typed(RightShift, dtype)(a, b), "shift", False, typed=True)

_LOGICAL = {name: logical for name, _, _, logical in _BINARY}


def _bitwise(op: str, *xs) -> Node:
    nodes = values(op, *xs)
    if all(n.dtype == dtypes.BOOL for n in nodes):
        return Node.make(_LOGICAL.get(op, "logical_not"), nodes)
    return typed_apply(op, *nodes)


def bitwise_and(a, b) -> Node:
    """a & b of ints (of bools: logical_and)."""
    return _bitwise("bitwise_and", a, b)


def bitwise_or(a, b) -> Node:
    """a | b of ints (of bools: logical_or)."""
    return _bitwise("bitwise_or", a, b)


def bitwise_xor(a, b) -> Node:
    """a ^ b of ints (of bools: logical_xor)."""
    return _bitwise("bitwise_xor", a, b)


def bitwise_not(x) -> Node:
    """~x of an int, -x - 1 (255 - x for uint8); of a bool, logical_not."""
    return _bitwise("bitwise_not", x)


def left_shift(a, b) -> Node:
    """a << b of ints; 0 where b < 0 or b >= the bit width."""
    return typed_apply("left_shift", a, b)


def right_shift(a, b) -> Node:
    """a >> b of ints (arithmetic for signed types); where b < 0 or b >= the bit width, -1
    for negative a, else 0."""
    return typed_apply("right_shift", a, b)


bitwise_left_shift = left_shift  # PyTorch's names
bitwise_right_shift = right_shift
