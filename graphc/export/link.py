"""Building an export's `NAME.o` and `libNAME.so` with the system tools: the runtime
compiled by the C compiler, merged with the compiled code and the data object into one
relocatable object by `ld -r`, every symbol but the API made local by objcopy (so two
exports, or an export and another graphc library, link into one program without clashing
over `graphc_entry` or the GEMM library's names), then linked as a shared library."""

from __future__ import annotations

from pathlib import Path

from graphc.export import toolchain

# Flags for the runtime: optimized, position-independent, warnings on; no -march: the
# runtime must run on any CPU of the architecture, so that name_create can refuse one
# that lacks a feature of the compiled code instead of crashing.
RUNTIME_FLAGS = ["-std=c11", "-O2", "-fPIC", "-Wall", "-Wextra", "-Wno-unused-parameter"]
LIBRARIES = ["-lm", "-lpthread"]


def api_symbols(name: str) -> list[str]:
    """The functions an export's object keeps global."""
    return [f"{name}_{f}" for f in ("create", "run", "run_array", "last_error", "destroy",
                                    "threads", "step", "set_step", "param_id", "param_name",
                                    "param_bytes", "param_data", "get_param", "set_param",
                                    "save_weights")]


def build(name: str, directory: Path, build_dir: Path, runtime_c: Path, objects: list[Path],
          tools: toolchain.Toolchain) -> dict[str, Path]:
    """Compile the runtime, merge it with `objects` into directory/NAME.o, hide the
    internal symbols and link directory/libNAME.so; returns the files written."""
    cc = tools.require_cc()
    runtime_o = build_dir / f"{name}_runtime.o"
    toolchain.run([*cc, *RUNTIME_FLAGS, f"-I{directory}", "-c", str(runtime_c), "-o",
                   str(runtime_o)], "compiling the runtime")
    merged = directory / f"{name}.o"
    parts = [str(runtime_o), *map(str, objects)]
    if tools.ld is not None:
        toolchain.run([tools.ld, "-r", "-o", str(merged), *parts], "merging the objects (ld -r)")
    else:  # the compiler drives the linker
        toolchain.run([*cc, "-r", "-nostdlib", "-o", str(merged), *parts],
                      "merging the objects (cc -r)")
    if tools.objcopy is not None:
        keep = build_dir / "api-symbols.txt"
        keep.write_text("\n".join(api_symbols(name)) + "\n")
        toolchain.run([tools.objcopy, f"--keep-global-symbols={keep}", str(merged)],
                      "hiding the internal symbols (objcopy)")
    library = directory / f"lib{name}.so"
    version_script = build_dir / f"{name}.map"
    version_script.write_text("{\n  global:\n" + "".join(f"    {s};\n" for s in api_symbols(name))
                              + "  local: *;\n};\n")
    toolchain.run([*cc, "-shared", "-o", str(library), str(merged),
                   f"-Wl,--version-script={version_script}", "-Wl,-z,noexecstack",
                   *LIBRARIES], "linking the shared library")
    return {"object": merged, "library": library}
