"""The exceptions graphc.onnx raises: a model it cannot read or that contradicts itself
(OnnxError), and the one error that lists every node it cannot map (UnsupportedOpsError)."""

from __future__ import annotations

from dataclasses import dataclass

from graphc.errors import GraphError


class OnnxError(GraphError):
    """An ONNX model graphc cannot read or import: not ONNX, truncated, an opset out of
    range, missing external data, a node or tensor that contradicts the model's own
    declarations. The message names the file, node or tensor."""


@dataclass(frozen=True)
class UnsupportedNode:
    """One node graphc cannot map, and why."""

    op_type: str
    name: str  # the node's name, or "#k" (its position) when the model gives none
    domain: str
    opset: int
    reason: str
    tensor: str | None = None  # the input whose value it needed at import, if that was why

    def line(self) -> str:
        domain = f"{self.domain}." if self.domain not in ("", "ai.onnx") else ""
        return f"  {domain}{self.op_type} (node {self.name}, opset {self.opset}): {self.reason}"


class UnsupportedOpsError(OnnxError):
    """Nodes graphc cannot map, every one of them (not the first only); `.nodes` lists
    them as UnsupportedNode records."""

    def __init__(self, nodes: list[UnsupportedNode], model: str = "the model"):
        self.nodes = list(nodes)
        kinds = sorted({n.op_type for n in self.nodes})
        lines = "\n".join(n.line() for n in self.nodes)
        super().__init__(f"{model}: {len(self.nodes)} node(s) of {len(kinds)} op type(s) "
                         f"cannot be mapped to graphc ops ({', '.join(kinds)}):\n{lines}")


class Unsupported(Exception):
    """Raised by a converter for a node it cannot map (an attribute value or input graphc
    cannot express yet); the importer collects these into one UnsupportedOpsError.
    `tensor`: the input whose value was needed at import and is computed at run time."""

    def __init__(self, reason: str, tensor: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.tensor = tensor
