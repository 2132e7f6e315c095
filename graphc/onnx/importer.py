"""gc.onnx.load: an ONNX model as a graphc graph. Graph inputs become gc.inputs (symbolic
dims for dim_params and the batch axis), initializers gc.params named as in the model,
each node the graphc ops its converter builds (graphc/onnx/converters). Values known at
import (constants, integer initializers, shapes) are folded as the walk goes, so shape
subgraphs leave static shapes behind. Every node graphc cannot map is collected into one
UnsupportedOpsError."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from onnx import ModelProto, TensorProto, TypeProto, numpy_helper

from graphc import dtypes
from graphc.errors import GraphError, GraphTypeError
from graphc.ir.node import Node
from graphc.onnx import registry
from graphc.onnx.context import NodeContext
from graphc.onnx.errors import OnnxError, Unsupported, UnsupportedNode, UnsupportedOpsError
from graphc.onnx.reader import read_model
from graphc.onnx.static import canonical, evaluate_constant, is_symbolic, materialize
from graphc.onnx.types import graphc_dtype, supported_names, type_name
from graphc.ops.leaf import input as gc_input
from graphc.ops.leaf import param as gc_param
from graphc.shapes import Dim, shape_str, symbol


@dataclass
class ImportedModel:
    """An imported ONNX model: `inputs` (gc.input values, in the model's order), `outputs`
    (graph values, in order), `params` (the trainable initializers, as gc.params named as
    in the model) and `buffers` (initializers that are state, not trained: BatchNorm's
    running statistics). `compile()` builds a function of it."""

    inputs: list[Node]
    outputs: list[Node]
    params: list[Node]
    buffers: list[Node]
    opset: int | None
    proto: ModelProto = field(repr=False)
    name: str = "model"

    @property
    def input_names(self) -> list[str]:
        return [n.name for n in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.proto.graph.output]

    def output(self, name: str) -> Node:
        """The output the model calls `name`."""
        try:
            return self.outputs[self.output_names.index(name)]
        except ValueError:
            raise KeyError(f"the model has no output {name!r} (outputs: "
                           f"{', '.join(self.output_names)})") from None

    def compile(self, backend: str = "llvm", **options):
        """gc.compile(inputs, outputs) of the model: call it with one array per input; it
        returns the list of outputs."""
        from graphc.compiler import compile as gc_compile

        return gc_compile(self.inputs, self.outputs, backend=backend, **options)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every param's and buffer's value by initializer name (the arrays themselves)."""
        return {p.name: p.value for p in (*self.params, *self.buffers)}


def load(source, *, batch_dim: str | None = "N", trainable: bool = True,
         constants: Mapping[str, np.ndarray] | None = None,
         base_dir: str | os.PathLike | None = None) -> ImportedModel:
    """Import an ONNX model (a path, bytes or a ModelProto) into graphc.

    batch_dim: the name of axis 0 of every input the model leaves symbolic (a dim_param
    or no size): inputs named differently by the exporter share one batch dim. None keeps
    the model's own dim names. Fixed sizes stay fixed.
    trainable: float initializers of at least one dim become gc.params (a 0-d one is a
    constant); False makes every initializer a constant (an inference graph).
    constants: graph inputs fixed at these values, {name: array}: they are no inputs of the
    result, and ops that need them known at import (a Reshape's shape, a Reduce's axes given
    as an input) can use them.
    base_dir: where external data lives for bytes or a ModelProto (default: the folder of
    the file, or the current directory)."""
    if batch_dim is not None and (not isinstance(batch_dim, str)
                                  or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", batch_dim)):
        raise ValueError(f"onnx.load: batch_dim must be an identifier or None, got {batch_dim!r}")
    read = read_model(source, base_dir)
    return Importer(read.proto, read.label, read.opset, batch_dim, trainable,
                    constants).run()


class _Poisoned:
    """The output of a node that could not be converted: its consumers are skipped."""


_POISONED = _Poisoned()


class Importer:
    """One import: the values of every tensor name as the walk over the nodes makes them."""

    def __init__(self, proto: ModelProto, label: str, opset: int | None,
                 batch_dim: str | None, trainable: bool,
                 constants: Mapping[str, np.ndarray] | None = None):
        self.proto = proto
        self.label = label
        self.opset = opset
        self.batch_dim = batch_dim
        self.trainable = trainable
        graph = proto.graph
        if len(graph.sparse_initializer):
            raise OnnxError(f"{label}: sparse initializers "
                            f"({graph.sparse_initializer[0].values.name}, ...) are not "
                            "supported")
        self.initializers: dict[str, TensorProto] = {t.name: t for t in graph.initializer}
        self.values: dict[str, object] = {}
        self.declared: dict[str, TypeProto] = {v.name: v.type for v in graph.value_info}
        self.declared.update({v.name: v.type for v in graph.output})
        self.params: list[Node] = []
        self.buffers: list[Node] = []
        self._arrays: dict[str, np.ndarray] = {}
        self._known: dict[Node, np.ndarray | None] = {}
        self._static: dict[str, np.ndarray | None] = {}
        self.unsupported: list[UnsupportedNode] = []
        self.constants = dict(constants or {})
        names = {v.name for v in graph.input}
        unknown = sorted(set(self.constants) - names)
        if unknown:
            raise ValueError(f"onnx.load: constants {unknown} are not graph inputs of "
                             f"{label} (inputs: {sorted(names)})")

    # ----- the walk -----------------------------------------------------------------------
    def run(self) -> ImportedModel:
        inputs = [self._graph_input(v) for v in self.proto.graph.input
                  if v.name not in self.initializers]
        inputs = [i for i in inputs if i is not None]
        for k, node in enumerate(self.proto.graph.node):
            self._convert(k, node)
        if self.unsupported:
            raise UnsupportedOpsError(self.unsupported, self.label)
        outputs = []
        for v in self.proto.graph.output:
            if v.name not in self.values and v.name not in self.initializers:
                raise OnnxError(f"{self.label}: graph output '{v.name}' is computed by no node")
            outputs.append(self.graph_value(v.name, "param"))
        name = self.proto.graph.name or "model"
        return ImportedModel(inputs, outputs, self.params, self.buffers, self.opset,
                             self.proto, name)

    def _convert(self, k: int, node) -> None:
        opset = self.opset if node.domain in registry.DEFAULT_DOMAINS else \
            next((o.version for o in self.proto.opset_import if o.domain == node.domain), 0)
        converter = registry.find(node.domain, node.op_type)
        ctx = NodeContext(self, node, k, opset)
        if converter is None:
            self._refuse(ctx, registry.why_unmapped(node.domain, node.op_type))
            return
        for name in node.input:
            if name and name not in self.values and name not in self.initializers:
                raise ctx.error(f"input '{name}' is computed by no earlier node and is no "
                                "graph input or initializer (are the nodes out of order?)")
        if any(name and self.values.get(name) is _POISONED for name in node.input):
            if converter.check is not None:
                try:
                    converter.check(ctx)
                except Unsupported as exc:
                    self._refuse(ctx, exc.reason, exc.tensor)
                    return
            self._poison(node)
            return
        try:
            if converter.check is not None:
                converter.check(ctx)
            results = self._results(converter, ctx)
        except Unsupported as exc:
            self._refuse(ctx, exc.reason, exc.tensor)
            return
        except OnnxError:
            raise
        except (GraphError, GraphTypeError, ValueError, TypeError, IndexError) as exc:
            raise ctx.error(str(exc)) from exc
        names = [name for name in node.output]
        if len(results) < sum(1 for n in names if n):
            raise ctx.error(f"graphc computes {len(results)} output(s), the node names "
                            f"{len(names)}")
        for name, value in zip(names, results):
            if not name:
                continue
            if isinstance(value, Node):
                folded = evaluate_constant(value, self._known)
                value = canonical(folded) if folded is not None else value
            elif value is not None:
                value = canonical(np.asarray(value))  # a static value (NumPy scalars too)
            self._check_declared(ctx, name, value)
            self.values[name] = value

    def _results(self, converter, ctx: NodeContext) -> list:
        """The node's outputs: folded from static inputs where they hold symbolic dims and
        the op knows how, else what the converter builds."""
        statics = [self.static_value(name) if name else None for name in ctx.node.input]
        given = [s for name, s in zip(ctx.node.input, statics) if name]
        if converter.fold is not None and given and all(s is not None for s in given) \
                and any(is_symbolic(s) for s in given):
            folded = converter.fold(ctx, statics)
            if folded is not None:
                return list(folded) if isinstance(folded, (list, tuple)) else [folded]
        out = converter.convert(ctx)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def _refuse(self, ctx: NodeContext, reason: str, tensor: str | None = None) -> None:
        self.unsupported.append(UnsupportedNode(ctx.op_type, ctx.name, ctx.node.domain,
                                                ctx.opset, reason, tensor))
        self._poison(ctx.node)

    def _poison(self, node) -> None:
        for name in node.output:
            if name:
                self.values[name] = _POISONED

    # ----- graph inputs -------------------------------------------------------------------
    def _fixed_input(self, name: str, dims, dtype) -> np.ndarray:
        """A graph input given a value by `constants`, checked against its declaration."""
        value = np.asarray(self.constants[name])
        if value.dtype != dtype or value.ndim != len(dims) or any(
                isinstance(d, int) and d != got for d, got in zip(dims, value.shape)):
            raise ValueError(f"onnx.load: constants['{name}'] is {value.dtype}{value.shape}, "
                             f"the model declares {dtype.name}{shape_str(tuple(dims))}")
        return np.array(value)

    def _graph_input(self, info) -> Node | None:
        what = f"{self.label}: graph input '{info.name}'"
        if not info.name:
            raise OnnxError(f"{self.label}: a graph input has no name")
        if not info.type.HasField("tensor_type"):
            raise OnnxError(f"{what} is not a tensor (sequences, maps and optionals are not "
                            "supported)")
        tensor = info.type.tensor_type
        dtype = graphc_dtype(tensor.elem_type)
        if dtype is None:
            raise OnnxError(f"{what} has element type {type_name(tensor.elem_type)}, which "
                            f"graphc does not support (it supports {supported_names()})")
        if not tensor.HasField("shape"):
            raise OnnxError(f"{what} declares no shape: graphc needs at least its rank")
        dims = [self._input_dim(info.name, axis, d) for axis, d in enumerate(tensor.shape.dim)]
        if info.name in self.constants:
            self.values[info.name] = self._fixed_input(info.name, dims, dtype)
            return None
        node = gc_input(info.name, tuple(dims), dtype)
        self.values[info.name] = node
        return node

    def _input_dim(self, name: str, axis: int, dim) -> Dim:
        if dim.HasField("dim_value"):
            if dim.dim_value < 0:
                raise OnnxError(f"{self.label}: graph input '{name}' axis {axis} has the "
                                f"negative size {dim.dim_value}")
            return int(dim.dim_value)
        if axis == 0 and self.batch_dim is not None:
            return symbol(self.batch_dim)
        if dim.HasField("dim_param") and dim.dim_param:
            return symbol(_identifier(dim.dim_param))
        return symbol(_identifier(f"{name}_{axis}"))

    # ----- values by name ---------------------------------------------------------------
    def initializer_array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            tensor = self.initializers[name]
            try:
                array = numpy_helper.to_array(tensor)
            except Exception as exc:  # noqa: BLE001 (protobuf/onnx raise many kinds)
                raise OnnxError(f"{self.label}: initializer '{name}' cannot be read: "
                                f"{exc}") from None
            self._arrays[name] = np.array(array)
        return self._arrays[name]

    def _is_trainable(self, name: str) -> bool:
        tensor = self.initializers[name]
        dtype = graphc_dtype(tensor.data_type)
        return (self.trainable and dtype is not None and dtypes.is_float(dtype)
                and len(tensor.dims) > 0)

    def static_value(self, name: str) -> np.ndarray | None:
        """The value of a tensor when it is known at import, else None."""
        value = self.values.get(name)
        if isinstance(value, np.ndarray):
            return value
        if name in self.initializers and (value is None or value.op == "param"):
            return self.initializer_array(name)  # a param used as data too: its value
        return None

    def graph_value(self, name: str, role: str) -> Node:
        """A tensor as a graph value: static values become constants, an initializer first
        used here becomes a param (role "param" or "buffer")."""
        value = self.values.get(name)
        if isinstance(value, Node):
            return value
        if isinstance(value, np.ndarray):
            return materialize(value)
        if value is _POISONED:
            raise AssertionError(f"internal error: tensor {name} was not converted")
        if name not in self.initializers:
            raise OnnxError(f"{self.label}: tensor '{name}' is computed by no node")
        array = self.initializer_array(name)
        if not self._is_trainable(name):
            if graphc_dtype(self.initializers[name].data_type) is None:
                raise Unsupported(f"initializer '{name}' has element type "
                                  f"{type_name(self.initializers[name].data_type)}, which "
                                  "graphc does not support")
            return materialize(array)
        node = gc_param(name, array)
        (self.buffers if role == "buffer" else self.params).append(node)
        self.values[name] = node
        return node

    def shape_of(self, name: str) -> tuple[Dim, ...]:
        value = self.values.get(name)
        if isinstance(value, (np.ndarray, Node)):
            return tuple(value.shape)
        return tuple(self.initializer_array(name).shape)

    def dtype_of(self, name: str) -> np.dtype:
        value = self.values.get(name)
        if isinstance(value, np.ndarray):
            return np.dtype(np.int64) if value.dtype == object else value.dtype
        if isinstance(value, Node):
            return value.dtype
        return self.initializer_array(name).dtype

    # ----- the model's own declarations -----------------------------------------------------
    def _check_declared(self, ctx: NodeContext, name: str, value) -> None:
        """Refuse an output whose dtype or static dims contradict what the model declares
        for it (value_info and graph outputs)."""
        declared = self.declared.get(name)
        if declared is None or not declared.HasField("tensor_type"):
            return
        tensor = declared.tensor_type
        got_dtype = np.dtype(np.int64) if isinstance(value, np.ndarray) and \
            value.dtype == object else value.dtype
        want = graphc_dtype(tensor.elem_type) if tensor.elem_type else None
        if want is not None and want != got_dtype:
            raise ctx.error(f"tensor '{name}': the model declares {type_name(tensor.elem_type)}"
                            f", the op computes {got_dtype.name}")
        if not tensor.HasField("shape"):
            return
        dims = tensor.shape.dim
        shape = tuple(value.shape)
        if len(dims) != len(shape):
            raise ctx.error(f"tensor '{name}': the model declares rank {len(dims)}, the op "
                            f"computes shape {shape_str(shape)} (rank {len(shape)})")
        for axis, (d, got) in enumerate(zip(dims, shape)):
            if d.HasField("dim_value") and isinstance(got, int) and d.dim_value != got:
                declared_shape = tuple(x.dim_value if x.HasField("dim_value") else
                                       (x.dim_param or "?") for x in dims)
                raise ctx.error(f"tensor '{name}': the model declares shape "
                                f"{shape_str(declared_shape)}, the op computes "
                                f"{shape_str(shape)} (axis {axis} differs)")


def _identifier(text: str) -> str:
    """A dim_param as a symbol name graphc accepts (an identifier)."""
    name = re.sub(r"\W", "_", text)
    return name if re.match(r"^[A-Za-z_]", name) else f"d_{name}"

