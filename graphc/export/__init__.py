"""Ahead-of-time export: a compiled function (inference or a whole training step) as a C
library that runs without Python: `gc.export(compiled, directory, name="model",
target="host", embed_weights=False, dims=None)` (graphc/export/api.py).

Modules, one job each: code (the program planned and compiled for the export's target,
as objects for a system linker), model (the facts every file is written from), cpu (the
CPU features to check, and their CPUID bits), weights (the weights file format),
header (NAME.h), tables and runtime.c (the C runtime: context, weights, worker threads,
errors), data (constants and embedded weights as an object), toolchain and link (cc,
ld -r, objcopy), manifest (NAME.json), readme (README.txt), cli (`graphc export`).

`gc.export` is this package, and calling it calls `export`: the function and the package
share the name, and whichever of them an import binds to `graphc.export` first, the
package or the function, `gc.export(...)` must work (a submodule import rebinds the
package's attribute in graphc to the package)."""

from __future__ import annotations

import sys
import types

from graphc.export.api import Export, binding_of, export
from graphc.export.toolchain import ExportError
from graphc.export.weights import read_weights

__all__ = ["Export", "ExportError", "binding_of", "export", "read_weights"]


class _CallableModule(types.ModuleType):
    """The package, callable as `export`."""

    def __call__(self, *args, **kwargs) -> Export:
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
