"""Sequential: layers applied one after another."""

from __future__ import annotations

from graphc.ir.node import Node
from graphc.nn.module import Module


class Sequential(Module):
    """Sequential(l1, l2, ...)(x) is ...l2(l1(x)); its params are named "0.weight", ..."""

    def __init__(self, *layers: Module):
        for k, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {k} is a {type(layer).__name__}, not a "
                                "graphc.nn Module")
        self.layers = list(layers)

    def forward(self, x: Node, training: bool) -> Node:
        for layer in self.layers:
            x = layer(x, training)
        return x

    def _walk(self, prefix: str):  # name params "0.weight", as PyTorch does
        for k, layer in enumerate(self.layers):
            yield from layer._walk(f"{prefix}{k}.")

    def __getitem__(self, k: int) -> Module:
        return self.layers[k]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({k}): {layer!r}" for k, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"
