"""Constant folding: a node whose inputs are all constants is evaluated once, at compile
time, by its NumPy reference, and becomes a constant.

A folded result bigger than FOLD_LIMIT elements, and bigger than its largest input, is
left alone: broadcasting a scalar to a huge shape should stay a broadcast, not become a
huge array in the program. A node whose reference raises (one_hot of a label out of
range, say) is left alone too, so the error comes at call time as without optimization.
"""

from __future__ import annotations

import math

import numpy as np

from graphc.ir.node import Node
from graphc.ir.op import Env, get_op
from graphc.ir.program import Program
from graphc.shapes import is_static

from .rewrite import rebuild, rewrite

FOLD_LIMIT = 1 << 16


def _size(shape) -> int:
    return math.prod(shape)


def fold(node: Node, inputs: tuple[Node, ...]) -> Node:
    """The constant value of `node` over constant inputs, or the rebuilt node."""
    node = rebuild(node, inputs)
    if not inputs or any(i.op != "constant" for i in inputs) or not is_static(node.shape):
        return node
    if _size(node.shape) > max(FOLD_LIMIT, *(_size(i.shape) for i in inputs)):
        return node
    try:
        value = get_op(node.op).numpy(node, [i.value for i in inputs], Env({}, 0, {}))
    except Exception:  # noqa: BLE001 - the same error is raised at call time, unoptimized
        return node
    return Node.make("constant", (), value=np.array(value, dtype=node.dtype))


def constant_folding(program: Program) -> Program:
    return rewrite(program, fold)
