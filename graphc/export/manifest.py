"""The JSON manifest of an export, `NAME.json`: what the header says, for programs that
read JSON rather than C (shapes, dtypes and names of every input, output and param, the
weights file's layout, the target and the CPU features checked)."""

from __future__ import annotations

import json

from graphc.export.header import STATUS, dim_argument, input_argument
from graphc.export.model import Model, Tensor

FORMAT = 1


def manifest(model: Model, files: dict[str, str]) -> dict:
    """The manifest as a dict (`files`: role -> file name in the export's directory)."""
    req = model.requirement
    return {
        "format": FORMAT,
        "graphc": model.graphc_version,
        "name": model.name,
        "training": model.training,
        "initial_step": model.step,
        "target": {"name": model.target.name, "triple": model.target.triple,
                   "cpu": model.target.cpu, "checked_features": req.names,
                   "xcr0": req.xcr0, "unchecked_features": list(req.unchecked)},
        "dims": [{"name": name, "value": value, "argument": dim_argument(macro)}
                 for name, value, macro in model.dims],
        "inputs": [_tensor(t) | {"argument": input_argument(t)} for t in model.inputs],
        "outputs": [_tensor(t) | {"argument": t.name} for t in model.outputs],
        "params": [_tensor(t) | {"offset": t.offset, "written": t.written}
                   for t in model.params],
        "weights": {"file": files["weights"], "bytes": len(model.weights),
                    "embedded": model.embedded, "fingerprint": model.fingerprint.hex()},
        "arena_bytes": model.arena_bytes,
        "status_codes": {macro: value for macro, value, _ in STATUS},
        "files": files,
    }


def text(model: Model, files: dict[str, str]) -> str:
    return json.dumps(manifest(model, files), indent=2) + "\n"


def _tensor(t: Tensor) -> dict:
    return {"name": t.name, "dtype": t.dtype.name, "shape": list(t.shape), "bytes": t.nbytes}
