"""The Module base class: a layer that builds graph and owns its params.

A module's params are the gc.param values among its attributes, and those of the modules
(or lists of modules) among its attributes, named by attribute path ("0.weight")."""

from __future__ import annotations

import numpy as np

from graphc.ir.node import Node


class Module:
    """Subclasses implement `forward(x, training) -> value`.

    `model(x, training=True)` builds the training graph (dropout on), `model(x)` the
    evaluation graph (dropout off); both use the same param nodes, so training one
    changes what the other computes."""

    def forward(self, x: Node, training: bool) -> Node:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, x, training: bool = False, **options) -> Node:
        if not isinstance(training, bool):
            raise TypeError(f"{type(self).__name__}: training must be a bool, got {training!r}")
        return self.forward(x, training, **options)

    def named_params(self) -> dict[str, Node]:
        """Every param of this module and its submodules, by attribute path; a param shared
        by two modules appears once, under its first path."""
        found: dict[str, Node] = {}
        seen: set[int] = set()
        for path, node in self._walk(""):
            if id(node) not in seen:
                seen.add(id(node))
                found[path] = node
        return found

    def params(self) -> list[Node]:
        """The params, in a fixed order (attribute order, depth first)."""
        return list(self.named_params().values())

    def _walk(self, prefix: str):
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            if isinstance(value, Node) and value.op == "param":
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value._walk(f"{prefix}{name}.")
            elif isinstance(value, (list, tuple)):
                for k, item in enumerate(value):
                    if isinstance(item, Module):
                        yield from item._walk(f"{prefix}{name}.{k}.")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the params' values, by name."""
        return {name: node.value.copy() for name, node in self.named_params().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Write values into the params (same names, shapes and dtypes), exactly."""
        params = self.named_params()
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing {missing}, "
                           f"unexpected {unexpected}")
        for name, node in params.items():
            assign(node, state[name], name)

    def num_params(self) -> int:
        return sum(int(p.value.size) for p in self.params())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


def assign(node: Node, value: np.ndarray, name: str) -> None:
    """Copy `value` into a param bit for bit, refusing another shape or dtype."""
    value = np.asarray(value)
    if value.shape != node.value.shape or value.dtype != node.value.dtype:
        raise ValueError(f"param '{name}': expected {node.value.dtype}{list(node.value.shape)},"
                         f" got {value.dtype}{list(value.shape)}")
    np.copyto(node.value, value)


def check_sizes(layer: str, **sizes) -> None:
    """Refuse sizes that are not positive ints, naming the layer and the argument."""
    for name, size in sizes.items():
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {size!r}")
