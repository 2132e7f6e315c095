"""Containers: Sequential (layers applied in turn), ModuleList and ModuleDict (modules held
for a forward of one's own), named as PyTorch names their params ("0.weight",
"blocks.1.conv.weight", "heads.digit.weight")."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from graphc.nn.module import Module


def _check_module(owner: str, key, value) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{owner}: layer {key} is a {type(value).__name__}, not a graphc.nn "
                        "Module")
    return value


class ModuleList(Module):
    """A list of modules whose params are named "0.weight", "1.weight", ...; it has no
    forward: a module holding it calls its items."""

    def __init__(self, modules: Iterable[Module] | None = None):
        self._items: list[Module] = []
        for module in modules or ():
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        self._items.append(_check_module(type(self).__name__, len(self._items), module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        self._items.insert(index, _check_module(type(self).__name__, index, module))

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for k, module in enumerate(self._items):
            yield str(k), module

    def __getitem__(self, k):
        if isinstance(k, slice):
            return type(self)(self._items[k])
        return self._items[k]

    def __setitem__(self, k: int, module: Module) -> None:
        self._items[k] = _check_module(type(self).__name__, k, module)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)

    def forward(self, x, training: bool):
        raise NotImplementedError(f"{type(self).__name__} has no forward: call its items")


class Sequential(ModuleList):
    """Sequential(l1, l2, ...)(x) is ...l2(l1(x)); its params are named "0.weight", ...
    (or by the keys of an OrderedDict given instead of layers, as in PyTorch)."""

    def __init__(self, *layers: Module):
        self._names: list[str] | None = None
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            named = layers[0]
            self._names = [str(name) for name in named]
            layers = tuple(named.values())
        super().__init__(layers)

    def append(self, module: Module) -> Sequential:
        if self._names is not None:
            self._names.append(str(len(self._names)))
        return super().append(module)

    def insert(self, index: int, module: Module) -> None:
        if self._names is not None:
            raise TypeError("Sequential.insert: not supported on a Sequential built from an "
                            "OrderedDict (its names would shift)")
        super().insert(index, module)

    def forward(self, x, training: bool):
        for layer in self._items:
            x = layer(x)  # each layer in its own mode (or the caller's override)
        return x

    def named_children(self) -> Iterator[tuple[str, Module]]:
        names = self._names if self._names is not None else map(str, range(len(self._items)))
        yield from zip(names, self._items)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return Sequential(*self._items[k])
        return self._items[k]

    def __getattr__(self, name: str):
        """A layer by its OrderedDict name (seq.proj), as PyTorch allows."""
        names = self.__dict__.get("_names")
        if names and name in names:
            return self.__dict__["_items"][names.index(name)]
        raise AttributeError(f"'Sequential' object has no attribute {name!r}")

    @property
    def layers(self) -> list[Module]:
        """The layers in order (a copy)."""
        return list(self._items)


class ModuleDict(Module):
    """Modules by name; params are named "<name>.weight". It has no forward: a module
    holding it calls its items."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None):
        self._items: dict[str, Module] = {}
        if modules is not None:
            self.update(modules)

    def update(self, modules) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, module in pairs:
            self[key] = module

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: a key must be a non-empty str without '.', got "
                           f"{key!r}")
        self._items[key] = _check_module("ModuleDict", key, module)

    def __getitem__(self, key: str) -> Module:
        return self._items[key]

    def __getattr__(self, name: str):
        """A module by its key (heads.a), as PyTorch allows."""
        items = self.__dict__.get("_items")
        if items is not None and name in items:
            return items[name]
        raise AttributeError(f"'ModuleDict' object has no attribute {name!r}")

    def __delitem__(self, key: str) -> None:
        del self._items[key]

    def __contains__(self, key) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def keys(self):
        return self._items.keys()

    def values(self):
        return self._items.values()

    def items(self):
        return self._items.items()

    def pop(self, key: str) -> Module:
        return self._items.pop(key)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._items.items()

    def forward(self, x, training: bool):
        raise NotImplementedError("ModuleDict has no forward: call its items")
