"""The data object of an export: the program's constants (and, with embed_weights=True,
the weights file) as read-only globals `NAME_gc_constants` / `NAME_gc_weights`, emitted
through LLVM for the export's target, so that megabytes of bytes never go through the C
compiler as text."""

from __future__ import annotations

from llvmlite import ir

from graphc.backends.llvm.runtime import target as targets
from graphc.export.model import Model

ALIGN = 64


def data_ir(model: Model) -> str:
    """The IR of the data module."""
    module = ir.Module(f"{model.name}_data")
    blobs = [("gc_constants", model.constant_blob)]
    if model.embedded:
        blobs.append(("gc_weights", model.weights))
    for name, data in blobs:
        data = data or b"\0"  # a global has at least a byte
        typ = ir.ArrayType(ir.IntType(8), len(data))
        g = ir.GlobalVariable(module, typ, f"{model.name}_{name}")
        g.initializer = ir.Constant(typ, bytearray(data))
        g.global_constant = True
        g.align = ALIGN
    return str(module)


def data_object(model: Model) -> bytes:
    """The data module as an object for the export's target (position-independent)."""
    return targets.compile_object(data_ir(model), model.target, linkable=True)
