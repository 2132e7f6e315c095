"""Where optimized nodes came from, for drawings and error messages: which node a rebuilt
node was rebuilt from, which unfused nodes a fused kernel computes, and which forward node
a gradient node helps differentiate. Kept beside the nodes (weakly), not in them, so
provenance never changes a node's identity."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence

from graphc.ir.node import Node

_ORIGIN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MEMBERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GRADIENT_OF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def record_members(kernel: Node, members: Sequence[Node]) -> Node:
    """Remember which nodes a fused kernel computes (for drawings); returns the kernel."""
    _MEMBERS[kernel] = tuple(members)
    return kernel


def members_of(kernel: Node) -> list[Node]:
    """The unfused nodes a fused kernel computes (empty if it is not one), following
    kernels made of kernels (an epilogue over a fused node)."""
    out: list[Node] = []
    stack = list(reversed(_MEMBERS.get(kernel, ())))
    while stack:
        member = stack.pop()
        if member in _MEMBERS:
            stack.extend(reversed(_MEMBERS[member]))
        else:
            out.append(member)
    return out


def origins(node: Node) -> Iterator[Node]:
    """The node, then the node it was rebuilt from, and so on back."""
    while node is not None:
        yield node
        node = _ORIGIN.get(node)


def record_rebuilt(new: Node, old: Node) -> None:
    """`new` was rebuilt from `old` (with other inputs): it inherits old's provenance."""
    if new is not old and new not in _ORIGIN:
        _ORIGIN[new] = old
        if old in _MEMBERS:
            _MEMBERS[new] = _MEMBERS[old]


def record_gradient_of(nodes, forward: Node) -> None:
    """`nodes` were built by gc.grad to differentiate `forward` (its gradient rule, and the
    sum of its adjoint's parts); a node already recorded keeps its first forward node."""
    for node in nodes:
        _GRADIENT_OF.setdefault(node, forward)


def gradient_of(node: Node) -> Node | None:
    """The forward node whose gradient `node` helps compute (None: not a gradient node, or
    one built otherwise), following the nodes it was rebuilt from."""
    for earlier in origins(node):
        forward = _GRADIENT_OF.get(earlier)
        if forward is not None:
            return forward
    return None
