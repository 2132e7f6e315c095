"""Common subexpressions and dead code.

Hash-consing already makes structurally equal nodes one node, and a program computes only
the nodes its outputs and updates reach, so most of CSE and DCE hold by construction.
This pass adds what construction misses: operands of commutative ops are put in a
canonical order (so `a * b` and `b * a` are one node; IEEE add, mul, max and min are
commutative bit for bit, NaN included), and an update writing a param's own value back
is dropped (it computes nothing).
"""

from __future__ import annotations

from graphc.ir.node import Node
from graphc.ir.program import Program

from .rewrite import rebuild, rewrite

COMMUTATIVE = frozenset({"add", "mul", "maximum", "minimum", "equal", "not_equal"})


def canonical(node: Node, inputs: tuple[Node, ...]) -> Node:
    if node.op in COMMUTATIVE:
        inputs = tuple(sorted(inputs, key=lambda n: n.serial))
    return rebuild(node, inputs)


def cse(program: Program) -> Program:
    program = rewrite(program, canonical)
    live = tuple((param, value) for param, value in program.updates if value is not param)
    return type(program)(program.inputs, program.outputs, live)
