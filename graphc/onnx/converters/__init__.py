"""The ONNX op converters, one module per op family; importing this package registers
them all (graphc/onnx/registry.py)."""

import importlib
import pkgutil

MODULES = tuple(importlib.import_module(f"{__name__}.{info.name}")
                for info in pkgutil.iter_modules(__path__) if info.name != "common")
