"""Rounding divisions and the remainder, Python's and NumPy's rules (`//` and `%`):
floor_divide rounds toward -inf and the remainder takes the divisor's sign, for ints and
floats alike; trunc_divide rounds toward 0 (`div(a, b, rounding_mode="trunc")`).

An integer division by 0 gives 0, quotient and remainder alike: NumPy's value (it also
warns; PyTorch raises ZeroDivisionError). The generated code tests for it, so no input
can trap the process (x86's idiv faults on a zero divisor, and on the minimum int
divided by -1, whose quotient wraps to itself as in NumPy). Float divisions follow IEEE
as NumPy does: 1.0 // 0.0 is inf, 1.0 % 0.0 NaN.

They are typed ops (Elementwise.typed): the expression names its dtype, so a fused
kernel that computes in floats still divides ints as ints.
"""

from __future__ import annotations

import numpy as np

from graphc.ir.node import Node
from graphc.ops.elementwise import define, typed_apply
from graphc.ops.scalar import typed
from graphc.ops.scalar_functions import FloorDivide, Remainder, TruncDivide

__all__ = [  # the public builders (graphc/dsl.py)
    "floor_divide", "remainder", "mod",
]


def _trunc_divide(a, b, dtype=None):
    """C's integer division (toward 0); trunc(a / b) for floats (PyTorch's div_trunc)."""
    if np.result_type(a, b).kind == "f":
        return np.trunc(np.true_divide(a, b))
    quotient, rest = np.floor_divide(a, b), np.remainder(a, b)
    return np.where((rest != 0) & ((np.asarray(a) < 0) != (np.asarray(b) < 0)), quotient + 1,
                    quotient)


define("floor_divide", 2, lambda a, b, dtype=None: np.floor_divide(a, b),
       lambda a, b, dtype: typed(FloorDivide, dtype)(a, b), "arith", typed=True)
define("trunc_divide", 2, _trunc_divide,
       lambda a, b, dtype: typed(TruncDivide, dtype)(a, b), "arith", typed=True)
define("remainder", 2, lambda a, b, dtype=None: np.remainder(a, b),
       lambda a, b, dtype: typed(Remainder, dtype)(a, b), "arith", typed=True)


def floor_divide(a, b) -> Node:
    """a // b rounded toward -inf (Python's and NumPy's floor_divide, PyTorch's
    floor_divide and div(rounding_mode="floor")); an integer division by 0 gives 0. Its
    gradient is 0."""
    return typed_apply("floor_divide", a, b)


def remainder(a, b) -> Node:
    """a % b with the sign of b (Python's %, NumPy's and PyTorch's remainder): a - b * (a
    // b); an integer b = 0 gives 0, a float one NaN. Gradient: 1 for a, -(a // b) for b."""
    return typed_apply("remainder", a, b)


def mod(a, b) -> Node:
    """a % b: remainder (NumPy's name)."""
    return typed_apply("remainder", a, b)
