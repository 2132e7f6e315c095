"""`gc.export`: a compiled function written out as a C library (header, object, shared
library, weights, manifest, README) that runs without Python."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sympy

from graphc.backends.llvm.runtime import target as targets
from graphc.compiler import Executable
from graphc.export import code, data, link, manifest, readme, tables, toolchain
from graphc.export.header import header
from graphc.export.model import check_name, describe


@dataclass(frozen=True)
class Export:
    """What `export` wrote: the directory, the name, each file by role ("header",
    "object", "library", "weights", "manifest", "readme", "runtime_source") and the
    manifest's contents."""

    directory: Path
    name: str
    files: dict[str, Path]
    manifest: dict


def export(compiled: Executable, directory: str | os.PathLike, name: str = "model", *,
           target: str | targets.Target = "host", embed_weights: bool = False,
           dims: Mapping[str, int] | None = None) -> Export:
    """Write `compiled` as a C library into `directory`: NAME.h (the C API and every shape
    as constants), NAME.o (the compiled code, the GEMM libraries it calls, the runtime and
    the constants in one relocatable object; only the API is global), libNAME.so,
    NAME.weights.bin (the params' current values, little-endian; also inside the object
    with embed_weights=True), NAME.json (a manifest), NAME_runtime.c (the runtime's
    source, for reference) and README.txt (one export per directory: README.txt is this
    export's).

    target: the CPU the code is for, as gc.compile takes it ("host", "x86-64-v3", ...;
    not the target `compiled` was compiled with: the export compiles anew); NAME_create
    refuses a CPU without its features. dims: the value of each symbolic dim
    (shapes are fixed at export; the C call takes each dim and refuses another value);
    default: the shapes of the function's last call. A training step exports too: each
    NAME_run updates the params its context holds, as the Python call updates W.value.

    Needs the system C compiler (the runtime and the shared library are built with it)
    and, for a single NAME.o, the linker; raises graphc.export.ExportError naming what is
    missing or what failed.
    """
    if not isinstance(compiled, Executable):
        raise TypeError(f"export: expected a function made by gc.compile, got "
                        f"{type(compiled).__name__}")
    name = check_name(name)
    chosen = target if isinstance(target, targets.Target) else targets.resolve(target)
    here = targets.host_target().triple.split("-")[0]
    if chosen.triple.split("-")[0] != here:
        raise toolchain.ExportError(
            f"export: target {chosen.name!r} is for {chosen.triple.split('-')[0]}, this machine "
            f"is {here}: the runtime is built by this machine's C compiler, so an export is for "
            f"its architecture (x86-64 levels and CPU names of it are fine)")
    if not isinstance(embed_weights, bool):
        raise TypeError(f"export: embed_weights must be True or False, got {embed_weights!r}")
    tools = toolchain.find()
    tools.require_cc()  # before the compile, which takes a while
    binding = binding_of(compiled, dims)
    built = code.build(compiled.program, binding, chosen)
    model = describe(name, compiled, binding, chosen, built, embed_weights)

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    names = {"header": f"{name}.h", "object": f"{name}.o", "library": f"lib{name}.so",
             "weights": f"{name}.weights.bin", "manifest": f"{name}.json",
             "readme": "README.txt", "runtime_source": f"{name}_runtime.c"}
    (out / names["header"]).write_text(header(model))
    (out / names["runtime_source"]).write_text(tables.runtime_source(model))
    with tempfile.TemporaryDirectory(prefix="graphc-export-") as scratch:
        build_dir = Path(scratch)
        objects = []
        for k, obj in enumerate([*built.objects, data.data_object(model)]):
            path = build_dir / f"{name}.part{k}.o"
            path.write_bytes(obj)
            objects.append(path)
        link.build(name, out, build_dir, out / names["runtime_source"], objects, tools)
    (out / names["weights"]).write_bytes(model.weights)
    contents = manifest.manifest(model, names)
    (out / names["manifest"]).write_text(manifest.text(model, names))
    (out / names["readme"]).write_text(readme.readme(model, names))
    return Export(out, name, {role: out / file for role, file in names.items()}, contents)


def binding_of(compiled: Executable, dims: Mapping[str, int] | None) -> dict[sympy.Symbol, int]:
    """The value of each symbolic dim of the inputs: from `dims` (by name), else none
    for static shapes, else the shapes of the last call."""
    symbols: list[sympy.Symbol] = []
    for node in compiled.inputs:
        for dim in node.shape:
            if not isinstance(dim, int):
                symbols += [s for s in sorted(sympy.sympify(dim).free_symbols, key=str)
                            if s not in symbols]
    names = ", ".join(str(s) for s in symbols)
    if dims is not None:
        if not isinstance(dims, Mapping):
            raise TypeError(f"export: dims must be a dict such as {{'N': 32}}, got "
                            f"{type(dims).__name__}")
        by_name = {str(s): s for s in symbols}
        unknown = sorted(str(k) for k in dims if str(k) not in by_name)
        if unknown:
            raise ValueError(f"export: dims names {unknown}, which no input has (its "
                             f"symbolic dims: {names or 'none'})")
        missing = [n for n in by_name if n not in {str(k) for k in dims}]
        if missing:
            raise ValueError(f"export: dims gives no value for {missing} (shapes are fixed at "
                             f"export: give every symbolic dim, {names})")
        binding = {}
        for key, value in dims.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"export: dim {key} must be an int >= 0, got {value!r}")
            binding[by_name[str(key)]] = value
        return binding
    if not symbols:
        return {}
    last = compiled.compiled()
    binding = getattr(last, "binding", None)
    if binding is None and hasattr(last, "plan"):
        binding = last.plan.binding
    if not binding:
        example = ", ".join(f"{str(s)!r}: 32" for s in symbols)
        raise ValueError(f"export: the function's inputs have symbolic dims ({names}) and it "
                         f"has not been called: pass dims={{{example}}} (shapes are fixed at "
                         "export)")
    return {s: int(binding[s]) for s in symbols}

