"""ONNX in and out (the optional extra `graphc[onnx]`).

- `load(path_or_model, batch_dim="N", trainable=True)` imports a model: its inputs become
  gc.inputs, its initializers gc.params (named as in the model), each node graphc ops, so
  the result compiles, runs and differentiates like any graphc graph.
- `save(outputs_or_compiled, path, inputs=None)` writes a graph (or a compiled function's
  optimized graph, fused kernels written back as primitive ops) as an ONNX model.
- `graphc.onnx.backend` is ONNX's backend interface (onnx.backend.base.Backend) over
  both of graphc's backends.
"""

from __future__ import annotations

try:
    import onnx as _onnx  # noqa: F401
except ImportError as exc:  # pragma: no cover (the extra is installed where this runs)
    raise ImportError("graphc.onnx needs the onnx package: pip install 'graphc[onnx]'") \
        from exc

from graphc.onnx.errors import OnnxError, UnsupportedNode, UnsupportedOpsError
from graphc.onnx.importer import ImportedModel, load
from graphc.onnx.registry import WAITING, mapped_ops

__all__ = ["load", "save", "ImportedModel", "OnnxError", "UnsupportedOpsError",
           "UnsupportedNode", "mapped_ops", "WAITING"]


def __getattr__(name: str):
    if name == "save":  # the exporter loads the optimizer: only when asked for
        from graphc.onnx.export import save

        return save
    raise AttributeError(f"module 'graphc.onnx' has no attribute {name!r}")
