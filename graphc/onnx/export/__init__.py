"""gc.onnx.save: a graphc graph, or a compiled function's optimized graph, as an ONNX
model that ONNX's checker accepts and ONNX Runtime runs with the same results. Fused
kernels are written back as the primitive ops they compute (graphc/onnx/export/unfuse.py);
params become initializers named as the params, symbolic dims stay symbolic."""

from __future__ import annotations

import os
from collections.abc import Sequence

import onnx
from onnx import ModelProto, helper

import graphc
from graphc.ir.graph import Graph, topological_order
from graphc.ir.node import Node
from graphc.onnx.errors import OnnxError
from graphc.onnx.export.emitters import EMITTERS, GRADIENT_OPS, NOT_EXPORTED
from graphc.onnx.export.unfuse import unfuse
from graphc.onnx.export.writer import GraphWriter, value_info
from graphc.onnx.reader import max_opset

EXPORT_OPSET = 18  # the default: Reduce* take their axes as inputs from 18 on


def save(outputs_or_compiled, path: str | os.PathLike | None, inputs: Sequence[Node] | None = None,
         *, output_names: Sequence[str] | None = None, opset: int = EXPORT_OPSET,
         name: str | None = None) -> ModelProto:
    """Write an ONNX model computing `outputs_or_compiled` and return it.

    outputs_or_compiled: a graph value or a list of them, a compiled function (its
    optimized graph is written, each fused kernel as its primitive ops; its param
    updates are not part of the model), or an imported model (gc.onnx.load's result).
    inputs: the model's inputs, in order (default: a compiled function's or imported
    model's own, else the gc.inputs the outputs need, in the order they were built).
    output_names: the graph outputs' names (default output_0, output_1, ...).
    path: the file to write (None: only return the model)."""
    outputs, given_inputs, label = _unpack(outputs_or_compiled)
    inputs = list(given_inputs if inputs is None else inputs)
    if not isinstance(opset, int) or not EXPORT_OPSET <= opset <= max_opset():
        raise ValueError(f"onnx.save: opset must be an int from {EXPORT_OPSET} to "
                         f"{max_opset()}, got {opset!r}")
    for node in inputs:
        if not isinstance(node, Node) or node.op != "input":
            raise TypeError(f"onnx.save: inputs must be gc.input values, got {node!r}")
    outputs = unfuse(outputs)
    needed = [n for n in Graph(outputs).leaves("input") if n not in set(inputs)]
    if needed:
        raise ValueError(f"onnx.save: the outputs need input(s) {[n.name for n in needed]} "
                         f"that are not among the inputs {[n.name for n in inputs]}")
    _refuse_unexportable(outputs)
    if output_names is None:
        output_names = [f"output_{k}" for k in range(len(outputs))]
    if len(output_names) != len(outputs) or len(set(output_names)) != len(output_names):
        raise ValueError(f"onnx.save: {len(outputs)} distinct output names expected, got "
                         f"{list(output_names)}")
    model = _write(inputs, outputs, list(output_names), opset, name or label)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:  # a bug of the exporter, not the user's
        raise RuntimeError(f"internal error: the exported model fails ONNX's checker: "
                           f"{exc}") from exc
    if path is not None:
        try:
            onnx.save_model(model, os.fspath(path))
        except OSError as exc:
            raise OnnxError(f"onnx.save: cannot write {path}: {exc}") from None
    return model


def _unpack(value) -> tuple[list[Node], list[Node], str]:
    """(outputs, default inputs, graph name) of what save() was given."""
    from graphc.compiler import Executable
    from graphc.onnx.importer import ImportedModel

    if isinstance(value, Executable):
        return list(value.program.outputs), list(value.inputs), value.name
    if isinstance(value, ImportedModel):
        return list(value.outputs), list(value.inputs), value.name
    outputs = [value] if isinstance(value, Node) else list(value)
    if not outputs or not all(isinstance(o, Node) for o in outputs):
        raise TypeError("onnx.save: expected a graph value, a list of them, a compiled "
                        f"function or an imported model, got {type(value).__name__}")
    inputs = sorted(Graph(outputs).leaves("input"), key=lambda n: n.serial)
    return outputs, inputs, "graphc"


def _refuse_unexportable(outputs: list[Node]) -> None:
    """One error listing every op of the graph that has no ONNX form."""
    bad: dict[str, str] = {}
    for node in topological_order(outputs):
        if node.op in ("input", "param", "constant") or node.op in EMITTERS:
            continue
        if node.op in GRADIENT_OPS:
            bad[node.op] = "a gradient op: export the forward function"
        else:
            bad[node.op] = NOT_EXPORTED.get(node.op, "no ONNX form is written for it")
    if bad:
        lines = "\n".join(f"  {op}: {why}" for op, why in sorted(bad.items()))
        raise OnnxError(f"onnx.save: {len(bad)} op(s) of the graph cannot be written as "
                        f"ONNX:\n{lines}")


def _write(inputs: list[Node], outputs: list[Node], output_names: list[str], opset: int,
           name: str) -> ModelProto:
    w = GraphWriter(inputs)
    params: dict[str, Node] = {}
    for node in topological_order(outputs):
        if node in w.names:
            continue
        if node.op == "param":
            w.names[node] = w.initializer(node.value, node.name)
            params[w.names[node]] = node
        elif node.op == "constant":
            w.names[node] = w.constant(node.value)
        elif node.op == "input":
            raise AssertionError(f"input {node.name} is not among the inputs")
        else:
            args = [w.names[i] for i in node.inputs]
            w.names[node] = EMITTERS[node.op](w, node, args)
    graph_outputs = []
    for out_name, node in zip(output_names, outputs):
        w.nodes.append(helper.make_node("Identity", [w.names[node]], [out_name],
                                        name=w.unique(f"{out_name}_identity")))
        graph_outputs.append(value_info(out_name, node))
    graph = helper.make_graph(w.nodes, name, [value_info(w.names[n], n) for n in inputs],
                              graph_outputs, initializer=w.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="graphc", producer_version=graphc.__version__)
    return model
