"""gc.grad: walk the graph backwards from a scalar, applying each op's gradient rule."""

from __future__ import annotations

from collections.abc import Sequence

from graphc import dtypes
from graphc.ir.graph import Graph
from graphc.ir.node import Node, next_serial, tagging
from graphc.ir.op import get_op
from graphc.ir.provenance import record_gradient_of
from graphc.ops.elementwise import add, cast
from graphc.ops.leaf import operands
from graphc.ops.shape import broadcast_to
from graphc.shapes import dims_equal, shape_str


def grad(scalar: Node, wrt: Sequence[Node], allow_unused: bool = False) -> list[Node]:
    """d scalar / d w for each w in wrt, as new graph values of w's shape and dtype.

    scalar: a float value of shape (). wrt: float values (params, inputs or intermediates).
    A w that scalar does not depend on raises ValueError, unless allow_unused=True, which
    gives zeros for it. Gradient nodes are tagged "grad" (drawings mark them).
    """
    if isinstance(wrt, Node):
        raise TypeError("grad: wrt must be a list of values, e.g. gc.grad(loss, [W])")
    wrt = list(wrt)
    _check(scalar, wrt)
    with tagging("grad"):
        adjoints = _backpropagate(scalar, set(wrt))
        result = []
        for w in wrt:
            g = adjoints.get(w)
            if g is None:
                if not allow_unused:
                    label = f"'{w.name}'" if w.name else repr(w)
                    raise ValueError(f"grad: the scalar does not depend on {label} (pass "
                                     "allow_unused=True for a zero gradient)")
                g = zeros(w)
            result.append(g)
    return result


def _check(scalar, wrt) -> None:
    if not isinstance(scalar, Node):
        raise TypeError(f"grad: expected a graph value to differentiate, got {scalar!r}")
    if scalar.shape != ():
        raise ValueError(f"grad: the value to differentiate must be a scalar (shape ()), got "
                         f"shape {shape_str(scalar.shape)}; reduce it with .sum() or .mean()")
    if not dtypes.is_float(scalar.dtype):
        raise TypeError(f"grad: the value to differentiate must be float, got {scalar.dtype.name}")
    for w in wrt:
        if not isinstance(w, Node):
            raise TypeError(f"grad: wrt must hold graph values, got {w!r}")
        if not dtypes.is_float(w.dtype):
            raise TypeError(f"grad: cannot differentiate with respect to {w!r}: only float "
                            "values have gradients")


def zeros(like: Node) -> Node:
    (zero,) = operands(0.0, reference=like.dtype)
    return broadcast_to(zero, like.shape)


def _backpropagate(scalar: Node, wrt: set[Node]) -> dict[Node, Node]:
    nodes = Graph([scalar]).nodes
    # Only nodes on a path from some w to the scalar need an adjoint.
    depends: set[Node] = set()
    for node in nodes:
        if node in wrt or (get_op(node.op).differentiable
                           and any(i in depends for i in node.inputs)):
            depends.add(node)
    contributions: dict[Node, list[Node]] = {}
    (one,) = operands(1.0, reference=scalar.dtype)
    contributions[scalar] = [one]
    adjoints: dict[Node, Node] = {}
    for node in reversed(nodes):
        parts = contributions.pop(node, None)
        if parts is None or node not in depends:
            continue
        first_new = next_serial()  # nodes numbered from here on differentiate `node`
        g = parts[0]
        for part in parts[1:]:
            g = add(g, part)
        adjoints[node] = g
        if not any(i in depends for i in node.inputs):
            record_gradient_of(_built_since(first_new, [g]), node)
            continue
        input_grads = get_op(node.op).grad(node, g)
        made = [g]
        for i, gi in zip(node.inputs, input_grads):
            if gi is None or i not in depends or not dtypes.is_float(i.dtype):
                continue
            if gi.dtype != i.dtype:
                gi = cast(gi, i.dtype)
            if not _same_shape(gi.shape, i.shape):
                raise RuntimeError(f"internal error: the gradient rule of {node.op} gave "
                                   f"{gi.dtype.name}{shape_str(gi.shape)} for an input of "
                                   f"{i.dtype.name}{shape_str(i.shape)}")
            contributions.setdefault(i, []).append(gi)
            made.append(gi)
        record_gradient_of(_built_since(first_new, made), node)
    return adjoints


def _built_since(serial: int, roots: list[Node]) -> list[Node]:
    """The nodes numbered `serial` or later among `roots` and their inputs, reached
    through such nodes only (the nodes built since `serial` was drawn)."""
    found, stack, seen = [], [r for r in roots if r.serial >= serial], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        found.append(node)
        stack.extend(i for i in node.inputs if i.serial >= serial)
    return found


def _same_shape(a, b) -> bool:
    return len(a) == len(b) and all(dims_equal(x, y) for x, y in zip(a, b))
