"""ONNX's backend interface (onnx.backend.base.Backend) over graphc: `prepare(model,
device="CPU", backend="llvm"|"numpy")` imports and compiles a model once and returns a
rep whose `run(inputs)` returns its outputs in order. `Backend` compiles with the LLVM
backend by default, `NumpyBackend` with the NumPy interpreter; the module-level
functions are `Backend`'s, as ONNX's backend convention has them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, helper
from onnx.backend.base import Backend as OnnxBackend
from onnx.backend.base import BackendRep, Device, DeviceType

from graphc.onnx.errors import UnsupportedOpsError
from graphc.onnx.importer import ImportedModel, load
from graphc.onnx.reader import read_model


class GraphcRep(BackendRep):
    """A model imported and compiled: run(inputs) with a list (in the model's input order),
    a dict by input name, or one array; returns a tuple of the outputs in order."""

    def __init__(self, model: ImportedModel, function):
        self.model = model
        self.function = function

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        names = self.model.input_names
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, Mapping):
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(f"missing input(s) {missing}; the model takes {names}")
            inputs = [inputs[n] for n in names]
        inputs = [np.asarray(a) if not isinstance(a, np.ndarray) else a for a in inputs]
        if len(inputs) != len(names):
            raise ValueError(f"the model takes {len(names)} input(s) {names}, got "
                             f"{len(inputs)}")
        outputs = self.function(*inputs) if names else self.function()
        return tuple(outputs)


class SpecializingRep(BackendRep):
    """A model some of whose inputs graphc needs known when the graph is built (a shape,
    axes or repeats given as a graph input, as ONNX's node tests give them): each run
    imports the model with those inputs fixed at their values, and compiles it once per
    distinct set of values."""

    def __init__(self, proto: ModelProto, fixed: set[str], backend: str, options: dict):
        self.proto = proto
        self.names = [v.name for v in proto.graph.input
                      if v.name not in {t.name for t in proto.graph.initializer}]
        self.fixed = fixed
        self.backend = backend
        self.options = options
        self._compiled: dict[tuple, GraphcRep] = {}

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if not isinstance(inputs, Mapping):
            if len(inputs) != len(self.names):
                raise ValueError(f"the model takes {len(self.names)} input(s) {self.names}, "
                                 f"got {len(inputs)}")
            inputs = dict(zip(self.names, inputs))
        values = {n: np.asarray(inputs[n]) for n in self.fixed}
        key = tuple((n, v.dtype.str, v.shape, v.tobytes()) for n, v in sorted(values.items()))
        rep = self._compiled.get(key)
        if rep is None:
            rep = self._compiled[key] = self._specialize(values, inputs)
        return rep.run({n: a for n, a in inputs.items() if n not in self.fixed})

    def _specialize(self, values: dict, inputs: Mapping) -> GraphcRep:
        """Import with `values` fixed; inputs found needed at import only then (a node
        refused for the next of its inputs) are fixed too, until the import succeeds."""
        while True:
            try:
                imported = load(self.proto, batch_dim=None, trainable=False,
                                constants=values)
                break
            except UnsupportedOpsError as exc:
                more = fixed_inputs(self.proto, exc)
                if more is None or more <= self.fixed:
                    raise
                self.fixed |= more
                values.update({n: np.asarray(inputs[n]) for n in more})
        return GraphcRep(imported, imported.compile(backend=self.backend, **self.options))


def fixed_inputs(proto: ModelProto, error: UnsupportedOpsError) -> set[str] | None:
    """The graph inputs whose values the refused nodes needed at import (directly or
    through the nodes computing what they needed), or None when a node was refused for
    another reason."""
    needed = [n.tensor for n in error.nodes]
    if not needed or any(t is None for t in needed):
        return None
    producers = {out: node for node in proto.graph.node for out in node.output}
    graph_inputs = {v.name for v in proto.graph.input}
    found: set[str] = set()
    stack, seen = list(needed), set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in graph_inputs:
            found.add(name)
        elif name in producers:
            stack.extend(i for i in producers[name].input if i)
    return found or None


class Backend(OnnxBackend):
    """graphc as an ONNX backend, compiling with `graphc_backend` unless prepare() is told
    otherwise (backend="numpy" or "llvm")."""

    graphc_backend = "llvm"

    @classmethod
    def is_compatible(cls, model: ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        """Whether graphc imports the model (it is imported to find out)."""
        try:
            load(model, batch_dim=None, trainable=False)
        except (ValueError, TypeError):
            return False
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: ModelProto | str | bytes, device: str = "CPU",
                backend: str | None = None, **kwargs: Any) -> GraphcRep | SpecializingRep:
        """Import (with the model's own dims, initializers as constants) and compile.
        Inputs graphc needs known when the graph is built (shapes, axes) are fixed at
        their values at each run (SpecializingRep). Keywords other than backend go to
        gc.compile (threads=, ...)."""
        if not cls.supports_device(device):
            raise ValueError(f"graphc runs on the CPU only, not on {device!r}")
        options = {k: v for k, v in kwargs.items() if k not in ("rtol", "atol")}
        backend = backend or cls.graphc_backend
        try:
            imported = load(model, batch_dim=None, trainable=False)
        except UnsupportedOpsError as exc:
            proto = model if isinstance(model, ModelProto) else read_model(model).proto
            fixed = fixed_inputs(proto, exc)
            if fixed is None:
                raise
            return SpecializingRep(proto, fixed, backend, options)
        return GraphcRep(imported, imported.compile(backend=backend, **options))

    @classmethod
    def run_model(cls, model: ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence | None = None, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Run one node on inputs (a list in the node's input order, or a dict by name)."""
        super().run_node(node, inputs, device=device, outputs_info=outputs_info, **kwargs)
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        names = [n for n in node.input if n]
        if isinstance(inputs, Mapping):
            inputs = [inputs[n] for n in names]
        arrays = [np.asarray(a) for a in inputs]
        graph = helper.make_graph(
            [node], f"{node.op_type}_node",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype),
                                           a.shape) for n, a in zip(names, arrays)],
            [helper.make_empty_tensor_value_info(n) for n in node.output if n])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return cls.prepare(model, device, **kwargs).run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            return Device(device).type == DeviceType.CPU
        except AttributeError:
            return False


class NumpyBackend(Backend):
    """graphc as an ONNX backend on its NumPy interpreter (the reference)."""

    graphc_backend = "numpy"


prepare = Backend.prepare
run_model = Backend.run_model
run_node = Backend.run_node
supports_device = Backend.supports_device
is_compatible = Backend.is_compatible
