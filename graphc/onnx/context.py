"""What a converter sees of one ONNX node: its attributes, its inputs as graph values or
as values known at import, their shapes and dtypes, and how to refuse the node."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from onnx import AttributeProto, NodeProto, helper

from graphc.ir.node import Node
from graphc.onnx.errors import OnnxError, Unsupported
from graphc.onnx.static import as_dims, materialize
from graphc.shapes import Dim

if TYPE_CHECKING:
    from graphc.onnx.importer import Importer

_ABSENT = object()


class NodeContext:
    """One node being converted: `attr`, `input`, `static`, `shape`, `dtype`, `error`."""

    def __init__(self, importer: Importer, node: NodeProto, index: int, opset: int):
        self._importer = importer
        self.node = node
        self.index = index
        self.opset = opset
        self.op_type = node.op_type
        self.name = node.name or f"#{index}"
        self._attrs = {a.name: a for a in node.attribute}

    # ----- attributes -------------------------------------------------------------------
    def attr(self, name: str, default=None):
        """The attribute's value (ints and floats as Python numbers, lists as tuples,
        strings decoded), or `default` when the node does not set it."""
        attribute = self._attrs.get(name)
        if attribute is None:
            return default
        if attribute.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS,
                              AttributeProto.SPARSE_TENSOR):
            raise Unsupported(f"attribute '{name}' holds a subgraph or a sparse tensor")
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, list):
            return tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                         for v in value)
        return value

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    # ----- inputs ----------------------------------------------------------------------------
    @property
    def input_count(self) -> int:
        """How many inputs the node gives (trailing omitted optional inputs not counted)."""
        names = list(self.node.input)
        while names and not names[-1]:
            names.pop()
        return len(names)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and self.node.input[i] != ""

    def input(self, i: int, default=_ABSENT, role: str = "param") -> Node | None:
        """Input i as a graph value (a value known at import becomes a constant; an
        initializer becomes a param, or with role="buffer" a non-trainable one). An omitted
        optional input gives `default` (None unless given)."""
        if not self.has_input(i):
            if default is _ABSENT and i >= len(self.node.input):
                return None
            return None if default is _ABSENT else default
        return self._importer.graph_value(self.node.input[i], role)

    def inputs(self) -> list[Node]:
        """Every given input as a graph value (variadic ops)."""
        return [self.input(i) for i in range(self.input_count) if self.has_input(i)]

    def is_static(self, i: int) -> bool:
        """Whether input i is known at import (a constant, an initializer, a shape)."""
        return self.has_input(i) and self._importer.static_value(self.node.input[i]) is not None

    def static(self, i: int, what: str, default=_ABSENT) -> np.ndarray:
        """Input i's value, which must be known at import (graphc's shapes and attributes
        are fixed when the graph is built)."""
        if not self.has_input(i):
            if default is not _ABSENT:
                return default
            raise self.error(f"the {what} (input {i}) is required but not given")
        value = self._importer.static_value(self.node.input[i])
        if value is None:
            raise Unsupported(f"its {what} (input '{self.node.input[i]}') is computed at run "
                              "time; graphc needs it known when the graph is built",
                              tensor=self.node.input[i])
        return value

    def static_ints(self, i: int, what: str, default=_ABSENT) -> tuple[int, ...] | None:
        """A static 1-D (or scalar) int input as a tuple of ints (symbolic dims refused)."""
        value = self.static(i, what, default)
        if value is None or value is default:
            return value
        if value.dtype == object:
            raise Unsupported(f"its {what} (input '{self.node.input[i]}') depends on a "
                              "symbolic dim")
        return tuple(int(v) for v in np.asarray(value).reshape(-1))

    def static_dims(self, i: int, what: str) -> tuple[Dim, ...]:
        """A static 1-D int input as dims: ints, or sympy expressions of symbolic dims."""
        return as_dims(self.static(i, what))

    def shape(self, i: int) -> tuple[Dim, ...]:
        """Input i's shape (dims may be symbolic)."""
        if not self.has_input(i):
            raise self.error(f"input {i} is required but not given")
        return self._importer.shape_of(self.node.input[i])

    def dtype(self, i: int) -> np.dtype:
        """Input i's dtype (a static shape value is int64)."""
        if not self.has_input(i):
            raise self.error(f"input {i} is required but not given")
        return self._importer.dtype_of(self.node.input[i])

    @staticmethod
    def constant(array) -> Node:
        return materialize(np.asarray(array))

    # ----- outputs ----------------------------------------------------------------------
    def wants_output(self, k: int) -> bool:
        return k < len(self.node.output) and self.node.output[k] != ""

    # ----- refusing -----------------------------------------------------------------------
    def error(self, message: str) -> OnnxError:
        """An error about this node (a model that contradicts itself or the op's spec)."""
        return OnnxError(f"{self._importer.label}: node {self.name} ({self.op_type}, opset "
                         f"{self.opset}): {message}")

    @staticmethod
    def unsupported(reason: str) -> Unsupported:
        return Unsupported(reason)
