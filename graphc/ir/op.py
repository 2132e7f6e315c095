"""What an op is: the base class every op derives from, the facts an op declares about
itself (read by passes and backends instead of lists of op names), the op table, and the
run-time environment the NumPy references see.

The op modules (graphc/ops) register themselves here when they are imported; the IR
layer never imports them, so the table is empty until graphc.ops is loaded.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from graphc.shapes import Shape, evaluate

if TYPE_CHECKING:
    from graphc.ir.node import Node


class Kind(enum.Enum):
    """What a node of the op is at run time."""

    LEAF = "leaf"  # a value that exists before the call: an argument, a constant
    VIEW = "view"  # the same bytes as (one output of) its input: no work
    KERNEL = "kernel"  # a loop nest that computes its value


class Pattern(enum.Enum):
    """How an op's kernel composes with its neighbours (TVM's TOpPattern)."""

    ELEMENTWISE = "elementwise"  # out[i] = f(in[i], ...): fuses into expressions
    REDUCTION = "reduction"  # folds axes; absorbs an elementwise producer
    OUT_FUSABLE = "out_fusable"  # a matmul or conv: takes an elementwise epilogue
    OPAQUE = "opaque"  # fuses with nothing


class Op:
    """Base class of ops. A subclass sets `name`, declares its facts and implements the
    three rules:

    - `infer(inputs, attrs) -> (dtype, shape)`: the build-time rule; raises on bad input.
    - `numpy(node, args, env) -> ndarray`: the reference implementation.
    - `grad(node, out_grad) -> list[Node | None]`: graph for d(out)/d(input_i) * out_grad,
      None where an input gets no gradient.

    Facts: `kind` and `pattern` (above); `differentiable`; `epilogue`, on an op that can
    carry an elementwise epilogue: the name of the op that does; `epilogue_attrs`: the
    attributes that op carries over; `fused`: the op is made by a fusion pass.
    """

    name: str = ""
    kind: Kind = Kind.KERNEL
    pattern: Pattern = Pattern.OPAQUE
    differentiable: bool = True
    epilogue: str | None = None
    epilogue_attrs: tuple[str, ...] = ()
    fused: bool = False

    def infer(self, inputs: tuple[Node, ...], attrs: dict) -> tuple[np.dtype, Shape]:
        raise NotImplementedError

    def numpy(self, node: Node, args: list[np.ndarray], env: Env) -> np.ndarray:
        raise NotImplementedError

    def grad(self, node: Node, out_grad: Node) -> list[Node | None]:
        raise NotImplementedError(f"op {self.name} has no gradient rule")

    def output_types(self, node: Node) -> tuple[tuple[np.dtype, Shape], ...] | None:
        """A multi-output op's outputs, (dtype, shape) each, or None for an op with one
        output. A multi-output node's NumPy value is the tuple of its outputs, read
        through projections (output_part, group_output); its own dtype and shape are
        its first output's."""
        return None

    def __repr__(self) -> str:
        return f"<op {self.name}>"


_OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    """Add an op to the table; each name is defined exactly once."""
    if not op.name:
        raise ValueError(f"{op!r} has no name")
    if op.name in _OPS:
        raise ValueError(f"op {op.name} is registered twice")
    _OPS[op.name] = op
    return op


def register_class(cls: type[Op]) -> type[Op]:
    """Class decorator: register one instance of an Op subclass."""
    register(cls())
    return cls


def get_op(name: str) -> Op:
    try:
        return _OPS[name]
    except KeyError:
        hint = "" if _OPS else " (no op is registered: import graphc or graphc.ops first)"
        raise KeyError(f"unknown op {name!r}{hint}") from None


def all_ops() -> dict[str, Op]:
    return dict(_OPS)


def is_kernel(node: Node) -> bool:
    """Whether a node does work at run time (not a leaf, not a view)."""
    return get_op(node.op).kind is Kind.KERNEL


class Env:
    """What ops see while running: the dim binding, the call counter, the arguments."""

    def __init__(self, binding: dict[sympy.Symbol, int], step: int,
                 arguments: dict[Node, np.ndarray], shapes: dict | None = None):
        self.binding = binding
        self.step = step
        self._arguments = arguments
        self._shapes: dict[tuple, tuple[int, ...]] = {} if shapes is None else shapes

    def shape(self, shape) -> tuple[int, ...]:
        """A (possibly symbolic) shape made concrete by the binding."""
        try:
            return self._shapes[shape]
        except KeyError:
            concrete = self._shapes[shape] = evaluate(shape, self.binding)
            return concrete

    def argument(self, node: Node) -> Any:
        return self._arguments[node]
