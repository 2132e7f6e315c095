"""The converter registry: for each ONNX op, the function that builds it from graphc ops
(graphc/onnx/converters, one module per op family), with how it folds at import when its
inputs are known shapes; and WAITING, the ONNX ops that wait for a graphc op still to come.

A converter takes a NodeContext (graphc/onnx/context.py) and returns the node's outputs:
graph values, or static arrays (values known at import). `fold`, where given, computes the
outputs from static inputs that hold symbolic dims (shape arithmetic); inputs known as
plain numbers fold without it (the converter's graph is evaluated at import). `check`,
where given, refuses (raises Unsupported) from the attributes alone, so a node is listed
as unsupported even when an earlier unsupported node left its inputs unknown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphc.onnx.reader import DEFAULT_DOMAINS  # ONNX's own domain ("" or "ai.onnx")


@dataclass(frozen=True)
class Converter:
    op_type: str
    convert: Callable[[Any], Any]
    fold: Callable[[Any, list], Any] | None = None
    check: Callable[[Any], None] | None = None


CONVERTERS: dict[str, Converter] = {}

# ONNX ops of the default domain graphc does not map, each with why: the graphc builder
# (or argument) it waits for, or "not planned". An op leaves this table when its
# converter is registered (tests/onnx/test_registry.py checks the two never overlap).
WAITING: dict[str, str] = {
    "MaxUnpool": "not planned (MaxPool's Indices output is not mapped either)",
    "LpPool": "not planned (no graphc Lp pool; PyTorch exports it rarely)",
}


def converter(*op_types: str, fold=None, check=None):
    """Register the decorated function as the converter of these ONNX op types."""

    def register(fn):
        for op_type in op_types:
            if op_type in CONVERTERS:
                raise ValueError(f"ONNX op {op_type} has two converters")
            CONVERTERS[op_type] = Converter(op_type, fn, fold, check)
        return fn

    return register


def find(domain: str, op_type: str) -> Converter | None:
    """The converter of an op, None when graphc maps no such op."""
    if domain not in DEFAULT_DOMAINS:
        return None
    _load_converters()
    return CONVERTERS.get(op_type)


def why_unmapped(domain: str, op_type: str) -> str:
    """Why an op has no converter, for the unsupported-ops error."""
    if domain not in DEFAULT_DOMAINS:
        return f"ops of the domain '{domain}' are not supported (only ai.onnx)"
    if op_type in WAITING:
        reason = WAITING[op_type]
        return reason if reason.startswith("not planned") else f"waits for {reason}"
    return "graphc has no mapping for this op"


def mapped_ops() -> list[str]:
    """Every ONNX op type that has a converter, sorted."""
    _load_converters()
    return sorted(CONVERTERS)


def _load_converters() -> None:
    import graphc.onnx.converters  # noqa: F401  (registers every converter)
