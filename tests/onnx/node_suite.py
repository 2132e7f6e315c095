"""ONNX's own node tests (onnx.backend.test.BackendTest over the test cases the onnx
package generates) run on graphc's ONNX backend: which tests are included (every test
whose ops graphc maps), which of them are excluded and why (each listed below with its
reason), and the op each test is counted under in the per-op report
(tests/onnx/conftest.py prints it)."""

from __future__ import annotations

import re
import unittest
import warnings

from onnx.backend.test import BackendTest
from onnx.backend.test.loader import load_model_tests

import graphc.onnx
from graphc.onnx.types import graphc_dtype, type_name

# Deliberate exclusions: (pattern matched against the test name, reason). Each names what
# graphc lacks; "(issue 16)" marks what the op-set work in progress adds, after which the
# pattern goes.
EXCLUDED: list[tuple[str, str]] = [
    (r"^test_(average|max)pool_3d", "3-D pooling: graphc has 1-D and 2-D pools"),
    (r"^test_convtranspose_3d", "3-D convolution: graphc has 1-D and 2-D ones"),
    (r"^test_averagepool_2d_dilations", "AveragePool with dilations: graphc's avg_pool2d "
     "has none (as PyTorch's)"),
    (r"^test_maxpool_with_argmax", "MaxPool's Indices output: graphc's max pool has none"),
    (r"^test_training_dropout(_default)?(_mask)?$", "training-mode Dropout draws its mask "
     "from graphc's random stream, not the NumPy seed the expected outputs came from "
     "(the zero-ratio cases run)"),
    (r"^test_identity_(sequence|opt)$", "sequence and optional values: graphc has tensors "
     "only"),
]


def _dtype_reason(model) -> str | None:
    """Why a test cannot run for its tensors' element types, or None."""
    graph = model.graph
    types = [v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)
             if v.type.HasField("tensor_type")]
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name == "to":  # Cast / EyeLike / RandomX targets
                types.append(attribute.i)
    bad = sorted({t for t in types if t and graphc_dtype(t) is None}, key=type_name)
    if not bad:
        return None
    names = ", ".join(type_name(t) for t in bad)
    return f"element type {names}: not a graphc dtype"


def exclusion(name: str, model) -> str | None:
    """Why the test `name` is excluded, or None when it must pass."""
    for pattern, reason in EXCLUDED:
        if re.search(pattern, name):
            return reason
    return _dtype_reason(model)


def _cases() -> list:
    with warnings.catch_warnings():  # the generators' own NumPy warnings (1 / 0, ...)
        warnings.simplefilter("ignore")
        return load_model_tests(kind="node")


def selection() -> dict[str, tuple[str, str | None]]:
    """Every included test: name -> (the op it counts under, the reason it is excluded or
    None). Included: every op of its model has a graphc mapping."""
    mapped = set(graphc.onnx.mapped_ops())
    cases = {c.name: c for c in _cases()}
    chosen = {}
    for name, case in cases.items():
        ops = {n.op_type for n in case.model.graph.node}
        if not ops or not ops <= mapped:
            continue
        base = cases.get(re.sub(r"_expanded(_ver\d+)?$", "", name), case)
        op = base.model.graph.node[0].op_type
        if op not in mapped:  # a function op graphc maps through its expansion only
            op += " (expanded)"
        chosen[name] = (op, exclusion(name, case.model))
    return chosen


def node_test_class(backend, name: str, chosen: dict[str, tuple[str, str | None]],
                    module: str) -> type[unittest.TestCase]:
    """A unittest class of BackendTest's tests for `chosen` on the CPU (the excluded ones
    skipped with their reasons), each tagged with its op for the report."""
    runner = BackendTest(backend, module)
    runner.include("^(" + "|".join(re.escape(t) for t in sorted(chosen)) + ")_cpu$")
    generated = runner.test_cases["OnnxBackendNodeModelTest"]
    reasons = {t: r for t, (_, r) in chosen.items() if r is not None}
    members = {"onnx_test_ops": {t: op for t, (op, _) in chosen.items()},
               "graphc_backend": backend.graphc_backend}
    for test in chosen:
        function = getattr(generated, f"{test}_cpu")
        if test in reasons:  # BackendTest's skip names the pattern; ours names the reason
            function = unittest.skip(reasons[test])(function)
        members[f"{test}_cpu"] = function
    cls = type(name, (unittest.TestCase,), members)
    cls.__module__ = module
    return cls
