"""The Module base class: a layer that builds graph and owns its params, with PyTorch's
modes, names and state dicts.

A module's params are the gc.param values among its attributes, and those of the modules
(or lists of modules) among its attributes, named by attribute path ("0.weight"), so a
model's `state_dict()` keys are those PyTorch gives the same architecture. Buffers
(`register_buffer`: running statistics and the like) are params that are saved and
loaded but not trained.

Modes: a module is in training mode when built; `train()` / `eval()` set the mode of it
and all its submodules. Calling a module builds the graph of its current mode (dropout
on in training, batch statistics in BatchNorm, ...); `module(x, training=False)` (or
True) overrides the mode of it and everything it calls while it builds."""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from graphc import dsl
from graphc.ir.node import Node

# The mode forced by an explicit `training=` of an enclosing call (None: each module's own).
_forced_mode: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "graphc_nn_forced_mode", default=None)
_takes_training: dict[type, bool] = {}


class IncompatibleKeys(NamedTuple):
    """What load_state_dict(strict=False) did not match, as PyTorch returns it."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Subclasses implement `forward(x, training) -> value` (graphc's form: the mode is
    passed in) or `forward(x, ...)` (PyTorch's form: read `self.training`).

    `model(x)` builds the graph of the model's mode; `model(x, training=True)` the
    training graph and `model(x, training=False)` the evaluation graph whatever the
    modes. Every graph built uses the same param nodes, so training one changes what the
    others compute. Inside forward, call submodules as `self.layer(x)`: each then uses
    its own mode (or the enclosing override), as in PyTorch."""

    # ----- modes --------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        """Whether this module builds its training graph: its mode, or the mode an
        enclosing call's `training=` forces while that call builds."""
        forced = _forced_mode.get()
        return self.__dict__.get("_training", True) if forced is None else forced

    @training.setter
    def training(self, mode: bool) -> None:
        self.__dict__["_training"] = _check_mode(type(self).__name__, mode)

    def train(self, mode: bool = True) -> Module:
        """Set training mode (or evaluation mode with mode=False) on this module and every
        submodule; returns the module."""
        mode = _check_mode(f"{type(self).__name__}.train", mode)
        for module in self.modules():
            module.__dict__["_training"] = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode for this module and every submodule (= train(False))."""
        return self.train(False)

    # ----- building graph -----------------------------------------------------------------
    def forward(self, x: Node, training: bool) -> Node:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, x, *args, training: bool | None = None, **options):
        if args and isinstance(args[0], (bool, np.bool_)) and training is None:
            training, args = bool(args[0]), args[1:]  # graphc's older form: layer(x, True)
        token = None
        if training is not None:
            token = _forced_mode.set(_check_mode(type(self).__name__, training))
        try:
            if _forward_takes_training(type(self)):
                return self.forward(x, self.training, *args, **options)
            return self.forward(x, *args, **options)
        finally:
            if token is not None:
                _forced_mode.reset(token)

    # ----- submodules, params and buffers -------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct submodules by attribute name (a list's items as "name.k")."""
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for k, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{k}", item

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module ("") and every submodule, depth first, each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            path, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield path, module
            children = [(f"{path}.{name}" if path else name, child)
                        for name, child in module.named_children()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def register_buffer(self, name: str, value, persistent: bool = True) -> Node:
        """A state param that is saved and loaded (persistent) but not trained, e.g. a
        running mean; returns its node (also set as the attribute `name`)."""
        node = value if isinstance(value, Node) else dsl.param(
            f"{type(self).__name__.lower()}.{name}", np.asarray(value))
        if node.op != "param":
            raise TypeError(f"{type(self).__name__}.register_buffer: '{name}' must be an "
                            f"array or a gc.param, got {node!r}")
        buffers = self.__dict__.setdefault("_buffer_names", {})
        buffers[name] = bool(persistent)
        setattr(self, name, node)
        return node

    def _walk(self, prefix: str, kinds=("param", "buffer"), persistent_only: bool = False):
        """(path, node) of every param and buffer, duplicates included (PyTorch's order:
        a module's own params and buffers, then its children's)."""
        buffers = self.__dict__.get("_buffer_names", {})
        for name, value in vars(self).items():
            if name.startswith("_") or not (isinstance(value, Node) and value.op == "param"):
                continue
            kind = "buffer" if name in buffers else "param"
            if kind in kinds and not (persistent_only and kind == "buffer"
                                      and not buffers[name]):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child._walk(f"{prefix}{name}.", kinds, persistent_only)

    @staticmethod
    def _unique(pairs) -> dict[str, Node]:
        found: dict[str, Node] = {}
        seen: set[int] = set()
        for path, node in pairs:
            if id(node) not in seen:
                seen.add(id(node))
                found[path] = node
        return found

    def named_params(self) -> dict[str, Node]:
        """Every trained param of this module and its submodules, by attribute path; a
        param shared by two modules appears once, under its first path."""
        return self._unique(self._walk("", ("param",)))

    def params(self) -> list[Node]:
        """The trained params, in a fixed order (attribute order, depth first)."""
        return list(self.named_params().values())

    def named_parameters(self) -> Iterator[tuple[str, Node]]:
        """PyTorch's name for named_params (as pairs)."""
        return iter(self.named_params().items())

    def parameters(self) -> list[Node]:
        """PyTorch's name for params()."""
        return self.params()

    def named_buffers(self) -> Iterator[tuple[str, Node]]:
        return iter(self._unique(self._walk("", ("buffer",))).items())

    def buffers(self) -> list[Node]:
        return [node for _, node in self.named_buffers()]

    def named_state(self) -> dict[str, Node]:
        """Every param and persistent buffer, each once: what a checkpoint must hold."""
        return self._unique(self._walk("", persistent_only=True))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the params' and persistent buffers' values by path, as PyTorch lists
        them (a shared param under each of its paths)."""
        return {path: node.value.copy() for path, node in self._walk("", persistent_only=True)}

    def load_state_dict(self, state: dict, strict: bool = True) -> IncompatibleKeys:
        """Write values into the params and buffers (same names, shapes and dtypes),
        exactly. Takes a PyTorch state_dict converted to NumPy
        (`{k: v.numpy() for k, v in torch_model.state_dict().items()}`) for the same
        architecture. strict=False skips names missing on either side (and reports them)
        instead of refusing; shapes and dtypes are always checked, and nothing is written
        unless all of them fit."""
        targets = dict(self._walk("", persistent_only=True))
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing {missing}, "
                           f"unexpected {unexpected}")
        pairs = [(name, node, np.asarray(state[name])) for name, node in targets.items()
                 if name in state]
        for name, node, value in pairs:
            check_assignable(node, value, name)
        for _name, node, value in pairs:
            np.copyto(node.value, value)
        return IncompatibleKeys(missing, unexpected)

    def num_params(self) -> int:
        return sum(int(p.value.size) for p in self.params())

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        inner = "".join(f"\n  ({name}): " + repr(child).replace("\n", "\n  ")
                        for name, child in children)
        extra = self.extra_repr()
        return f"{type(self).__name__}({extra}{inner}\n)"

    def extra_repr(self) -> str:
        return ""


def _check_mode(owner: str, mode) -> bool:
    if not isinstance(mode, (bool, np.bool_)):
        raise TypeError(f"{owner}: training must be a bool, got {mode!r}")
    return bool(mode)


def _forward_takes_training(cls: type) -> bool:
    """Whether cls.forward takes the mode as its second parameter (graphc's form)."""
    if cls not in _takes_training:
        try:
            params = list(inspect.signature(cls.forward).parameters)
        except (TypeError, ValueError):
            params = []
        _takes_training[cls] = len(params) >= 3 and params[2] == "training"
    return _takes_training[cls]


def assign(node: Node, value: np.ndarray, name: str) -> None:
    """Copy `value` into a param bit for bit, refusing another shape or dtype."""
    value = np.asarray(value)
    check_assignable(node, value, name)
    np.copyto(node.value, value)


def check_assignable(node: Node, value: np.ndarray, name: str) -> None:
    if value.shape != node.value.shape or value.dtype != node.value.dtype:
        raise ValueError(f"param '{name}': expected {node.value.dtype}{list(node.value.shape)},"
                         f" got {value.dtype}{list(value.shape)}")


def check_sizes(layer: str, **sizes) -> None:
    """Refuse sizes that are not positive ints, naming the layer and the argument."""
    for name, size in sizes.items():
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {size!r}")
