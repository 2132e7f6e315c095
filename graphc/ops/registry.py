"""The op table: every op is registered once, with its shape/dtype rule, NumPy reference
and gradient rule; backends look ops up here by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.shapes import Shape

if TYPE_CHECKING:
    from graphc.ir.node import Node

_OPS: dict[str, Op] = {}


class Op:
    """Base class of ops. Subclasses set `name` and implement the three rules.

    - `infer(inputs, attrs) -> (dtype, shape)`: the build-time rule; raises on bad input.
    - `numpy(node, args, env) -> ndarray`: the reference implementation.
    - `grad(node, out_grad) -> list[Node | None]`: graph for d(out)/d(input_i) * out_grad,
      None where an input gets no gradient.
    """

    name: str = ""
    differentiable: bool = True

    def infer(self, inputs: tuple[Node, ...], attrs: dict) -> tuple[np.dtype, Shape]:
        raise NotImplementedError

    def numpy(self, node: Node, args: list[np.ndarray], env: Any) -> np.ndarray:
        raise NotImplementedError

    def grad(self, node: Node, out_grad: Node) -> list[Node | None]:
        raise NotImplementedError(f"op {self.name} has no gradient rule")

    def __repr__(self) -> str:
        return f"<op {self.name}>"


def register(op: Op) -> Op:
    """Add an op to the table; each name is defined exactly once."""
    if not op.name:
        raise ValueError(f"{op!r} has no name")
    if op.name in _OPS:
        raise ValueError(f"op {op.name} is registered twice")
    _OPS[op.name] = op
    return op


def register_class(cls: type[Op]) -> type[Op]:
    register(cls())
    return cls


def get_op(name: str) -> Op:
    _load_all()
    try:
        return _OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}") from None


def all_ops() -> dict[str, Op]:
    _load_all()
    return dict(_OPS)


_loaded = False


def _load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import graphc.ops  # noqa: F401  (registers every op module)

