"""Which compiled functions' calls may overlap: none that share a param.

Params are kept in groups: compiling a function merges the groups of every param it reads
or writes into one, and each call holds its group's lock, so a training step writing W and
an eval reading W (or another step writing it) take turns, while functions over disjoint
params run at once. One lock per call, whatever the number of params, and a merge takes
locks in one global order (group creation), so nothing can deadlock."""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterable

from graphc.ir.node import Node

_order = itertools.count()
_registry_lock = threading.Lock()
_groups: dict[int, Group] = {}  # by param serial; an entry leaves with its param


class Group:
    """A set of params whose users take turns; `parent` is set once it is merged into an
    older group (its root holds the lock that counts)."""

    __slots__ = ("lock", "order", "parent")

    def __init__(self):
        self.lock = threading.Lock()
        self.order = next(_order)
        self.parent: Group | None = None

    def root(self) -> Group:
        group = self
        while group.parent is not None:
            group = group.parent
        return group


def group_of(params: Iterable[Node]) -> Group | None:
    """The one group of all these params (merging their groups), None for no params. A
    merge waits for calls already running in the groups it merges."""
    params = list(params)
    if not params:
        return None
    with _registry_lock:
        groups = {_group_of_param(p) for p in params}
    while True:
        roots = sorted({g.root() for g in groups}, key=lambda g: g.order)
        if _merge(roots[0], roots[1:]):
            return roots[0]


def _group_of_param(param: Node) -> Group:
    group = _groups.get(param.serial)
    if group is None:
        group = _groups[param.serial] = Group()
        weakref.finalize(param, _groups.pop, param.serial, None)
    return group


def _merge(root: Group, others: list[Group]) -> bool:
    """Make `root` (older than `others`) the parent of `others`: later calls in them take
    root's lock (held here meanwhile), and calls already running in them are waited for.
    False if any of them was merged elsewhere meanwhile (the caller looks roots up again)."""
    with root.lock:
        with _registry_lock:  # parents change only here, checked and set at once
            if root.parent is not None or any(g.parent is not None for g in others):
                return False
            for group in others:
                group.parent = root
        for group in others:
            with group.lock:  # a call that took the lock before the merge has finished
                pass
        return True
