"""ONNX's node tests on graphc's LLVM backend. Compiling each of the ~700 test models
natively takes about two minutes on this project's 2-core machine, so the default run
takes a representative subset: the plainest test of every mapped op; the whole suite
is marked slow (pytest -m slow runs it)."""

import pytest

from graphc.onnx.backend import Backend
from tests.onnx.node_suite import node_test_class, selection

CHOSEN = selection()


def _representatives(chosen: dict, per_op: int = 1) -> dict:
    """Up to `per_op` runnable tests of each op, its plainest (shortest-named) first."""
    picked: dict[str, list[str]] = {}
    for name in sorted(chosen, key=lambda n: (len(n), n)):
        op, reason = chosen[name]
        if reason is None and len(picked.setdefault(op, [])) < per_op:
            picked[op].append(name)
    return {name: chosen[name] for names in picked.values() for name in names}


OnnxNodeLlvmTest = node_test_class(Backend, "OnnxNodeLlvmTest", _representatives(CHOSEN),
                                   __name__)
OnnxNodeLlvmFullTest = pytest.mark.slow(
    node_test_class(Backend, "OnnxNodeLlvmFullTest", CHOSEN, __name__))
