"""graphc: a symbolic graph compiler for neural networks.

Declare a model as a graph with the DSL, differentiate it with `grad`, and `compile` it
with the LLVM backend (native code) or the NumPy reference backend.

The public names are loaded on first use (PEP 562), so that importing one layer
(`import graphc.ir`) does not import the layers above it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Where the public names that are not graph-building functions (graphc/dsl.py) live.
_HOMES = {
    "grad": "graphc.autodiff",
    "compile": "graphc.compiler",
    "Executable": "graphc.compiler",
    "GraphError": "graphc.errors",
    "GraphTypeError": "graphc.errors",
    "PromotionWarning": "graphc.errors",
    "NonFiniteValueError": "graphc.errors",
    "Graph": "graphc.ir",
    "Node": "graphc.ir",
    "to_dot": "graphc.viz",
}
# Subpackages and modules reached as attributes (gc.nn.Linear, gc.ops.scalar, ...).
# gc.export is the package graphc.export, which is callable: gc.export(compiled, directory).
_MODULES = ("autodiff", "backends", "checkpoint", "compiler", "data", "distributed", "dsl",
            "dtypes", "errors", "export", "fuzz", "ir", "nn", "ops", "onnx", "optim", "passes",
            "shapes", "train", "viz")

if TYPE_CHECKING:  # what the lazy loading below provides, for type checkers and editors
    from graphc import data, distributed, nn, optim, train  # noqa: F401
    from graphc.autodiff import grad  # noqa: F401
    from graphc.compiler import Executable, compile  # noqa: F401
    from graphc.dsl import *  # noqa: F403
    from graphc.errors import (  # noqa: F401
        GraphError,
        GraphTypeError,
        NonFiniteValueError,
        PromotionWarning,
    )
    from graphc.export import export  # noqa: F401
    from graphc.ir import Graph, Node  # noqa: F401
    from graphc.viz import to_dot  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"graphc.{name}")
    module = importlib.import_module(_HOMES.get(name, "graphc.dsl"))
    try:
        value = getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module 'graphc' has no attribute {name!r}") from None
    if name.startswith("_"):
        raise AttributeError(f"module 'graphc' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    dsl = importlib.import_module("graphc.dsl")
    public = [n for n in vars(dsl) if not n.startswith("_")]
    return sorted(set(public) | set(_HOMES) | set(_MODULES) | {"__version__"})
