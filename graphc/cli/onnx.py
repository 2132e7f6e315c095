"""`graphc onnx info MODEL` (its ops, opset, params, and what maps to graphc) and `graphc
onnx run MODEL --input x.npy` (import, compile, run, print or save the outputs); and the
imported model as a compiled function for `graphc viz MODEL.onnx`."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from graphc.cli.base import CommandError, command


def _arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="onnx_command", metavar="SUBCOMMAND")
    info = sub.add_parser("info", help="the model's opset, inputs, outputs, ops and params, "
                                       "and which ops graphc maps")
    info.add_argument("model", help="an .onnx file")
    run = sub.add_parser("run", help="import the model, run it on inputs from .npy files, "
                                     "print (or save) the outputs")
    run.add_argument("model", help="an .onnx file")
    run.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE.npy",
                     help="one input: its .npy file, in the model's input order, or NAME=FILE "
                          "(repeat for each input)")
    run.add_argument("--backend", choices=("llvm", "numpy"), default="llvm")
    run.add_argument("--output", "-o", default=None, metavar="FILE.npz",
                     help="save the outputs, by name, to an .npz file")
    run.add_argument("--threads", type=int, default=None, help="threads for the LLVM backend")


def _load(path: str, **options):
    from graphc.onnx import OnnxError, load

    if not Path(path).is_file():
        raise CommandError(f"no such model: {path}")
    try:
        return load(path, **options)
    except OnnxError as exc:
        raise CommandError(str(exc)) from None


def onnx_function(path: Path):
    """The imported model at `path` compiled for drawing (NumPy backend: nothing is built
    until a call), named after the file."""
    model = _load(str(path))
    return model.compile(backend="numpy", name=path.stem.replace("-", "_") or "model")


def _shape_text(info) -> str:
    if not info.type.HasField("tensor_type"):
        return "(not a tensor)"
    from graphc.onnx.types import type_name

    tensor = info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in tensor.shape.dim]
    return f"{type_name(tensor.elem_type).lower()} ({', '.join(str(d) for d in dims)})"


def info_lines(path: str) -> list[str]:
    """What `graphc onnx info` prints."""
    from graphc.onnx import OnnxError, UnsupportedOpsError
    from graphc.onnx.importer import Importer
    from graphc.onnx.reader import read_model
    from graphc.onnx.registry import find, why_unmapped

    try:
        read = read_model(path)
    except OnnxError as exc:
        raise CommandError(str(exc)) from None
    proto, graph = read.proto, read.proto.graph
    initializers = {t.name for t in graph.initializer}
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in proto.opset_import)
    values = sum(int(np.prod(t.dims)) for t in graph.initializer)
    lines = [f"{path}: ONNX IR {proto.ir_version}, opsets: {opsets}",
             f"producer: {proto.producer_name} {proto.producer_version}".rstrip(),
             f"graph '{graph.name}': {len(graph.node)} nodes, {len(initializers)} initializers "
             f"({values:,} values)", "inputs:"]
    lines += [f"  {v.name}: {_shape_text(v)}" for v in graph.input if v.name not in initializers]
    lines += ["outputs:"] + [f"  {v.name}: {_shape_text(v)}" for v in graph.output]
    lines.append("ops:")
    for (domain, op), count in sorted(Counter((n.domain, n.op_type)
                                              for n in graph.node).items()):
        mapped = find(domain, op) is not None
        what = "maps to graphc" if mapped else why_unmapped(domain, op)
        lines.append(f"  {op:<28}{count:>5}  {what}")
    try:
        model = Importer(proto, path, read.opset, "N", True).run()
    except UnsupportedOpsError as exc:
        lines.append(f"import: {len(exc.nodes)} node(s) cannot be mapped:")
        lines += [n.line() for n in exc.nodes]
        return lines
    except (OnnxError, ValueError, TypeError) as exc:
        lines.append(f"import: fails: {exc}")
        return lines
    params = sum(p.value.size for p in model.params)
    lines.append(f"import: ok: {len(model.inputs)} input(s), {len(model.params)} params "
                 f"({params:,} values), {len(model.buffers)} buffers")
    return lines


def _inputs(model, specs: list[str]) -> list[np.ndarray]:
    names = model.input_names
    by_name: dict[str, str] = {}
    for k, spec in enumerate(specs):
        name, sep, file = spec.partition("=")
        if not sep:
            if k >= len(names):
                raise CommandError(f"{len(specs)} inputs given, the model takes {len(names)}: "
                                   f"{', '.join(names)}")
            name, file = names[k], spec
        if name not in names:
            raise CommandError(f"the model has no input '{name}' (inputs: {', '.join(names)})")
        by_name[name] = file
    missing = [n for n in names if n not in by_name]
    if missing:
        raise CommandError(f"no value for input(s) {', '.join(missing)}: give --input "
                           "NAME=FILE.npy")
    arrays = []
    for name in names:
        try:
            arrays.append(np.load(by_name[name], allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise CommandError(f"input '{name}': cannot read {by_name[name]}: {exc}") from None
    return arrays


def _run(args: argparse.Namespace) -> int:
    model = _load(args.model)
    arrays = _inputs(model, args.input)
    options = {} if args.threads is None else {"threads": args.threads}
    try:
        function = model.compile(backend=args.backend, **options)
        outputs = function(*arrays)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    named = dict(zip(model.output_names, outputs))
    if args.output:
        np.savez(args.output, **named)
        print(f"wrote {args.output}: {', '.join(named)}")
        return 0
    with np.printoptions(threshold=20, edgeitems=3, precision=5):
        for name, value in named.items():
            print(f"{name}: {value.dtype} {value.shape}\n{value}")
    return 0


@command("onnx", "ONNX models: graphc onnx info MODEL | graphc onnx run MODEL --input X.npy",
         _arguments)
def onnx_command(args: argparse.Namespace) -> int:
    if args.onnx_command == "info":
        for line in info_lines(args.model):
            print(line)
        return 0
    if args.onnx_command == "run":
        return _run(args)
    print("graphc onnx: give a subcommand: info or run (graphc onnx --help)", file=sys.stderr)
    return 2
