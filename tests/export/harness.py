"""Running an export from C and from ctypes, for the tests: a C program generated from the
export's manifest (it calls the typed NAME_run, so the header's prototype is what gets
tested), built with the system compiler against NAME.o; and a fresh Python process that
loads libNAME.so with ctypes, graphc never imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphc.export import Export, toolchain


def compiler() -> list[str]:
    """The C compiler, or a skip saying why there is none (CI has one)."""
    cc = toolchain.find().cc
    if cc is None:
        pytest.skip("no C compiler found (looked for $CC, cc, gcc, clang): exporting a C "
                    "library builds its runtime with one")
    return cc


HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "@NAME@.h"

static void *load(const char *path, size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    FILE *f = fopen(path, "rb");
    if (!p || !f || fread(p, 1, bytes, f) != bytes) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    return p;
}

/* argv: weights ("": the embedded ones) threads runs save-path|- inputs... outputs...
 * (each output file gets every run's output in turn) */
int main(int argc, char **argv) {
    if (argc != 5 + @INPUTS@ + @OUTPUTS@) { fprintf(stderr, "usage\n"); return 2; }
    @NAME@_ctx *ctx = @NAME@_create(argv[1][0] ? argv[1] : NULL, atoi(argv[2]));
    if (!ctx) { fprintf(stderr, "%s\n", @NAME@_last_error(NULL)); return 3; }
@DECLARE@
    for (int r = 0; r < atoi(argv[3]); r++) {
        int status = @NAME@_run(ctx@ARGS@);
        if (status) {
            fprintf(stderr, "status %d: %s\n", status, @NAME@_last_error(ctx));
            return 4;
        }
@WRITE@
    }
    if (strcmp(argv[4], "-") && @NAME@_save_weights(ctx, argv[4])) {
        fprintf(stderr, "%s\n", @NAME@_last_error(ctx));
        return 5;
    }
    @NAME@_destroy(ctx);
    return 0;
}
"""


def harness_source(manifest: dict) -> str:
    name, P = manifest["name"], manifest["name"].upper()
    inputs, outputs = manifest["inputs"], manifest["outputs"]
    declare, write, args = [], [], []
    for d in manifest["dims"]:
        args.append(f"{d['value']}LL")
    for k in range(len(inputs)):
        declare.append(f"    const {P}_INPUT_{k}_CTYPE *in{k} = load(argv[{5 + k}], "
                       f"{P}_INPUT_{k}_BYTES);")
        args.append(f"in{k}")
    for k in range(len(outputs)):
        declare.append(f"    {P}_OUTPUT_{k}_CTYPE *out{k} = malloc({P}_OUTPUT_{k}_BYTES + 1);")
        declare.append(f'    FILE *file{k} = fopen(argv[{5 + len(inputs) + k}], "wb");')
        write.append(f"        fwrite(out{k}, 1, {P}_OUTPUT_{k}_BYTES, file{k});")
        args.append(f"out{k}")
    closing = [f"    fclose(file{k});" for k in range(len(outputs))]
    text = (HARNESS.replace("@DECLARE@", "\n".join(declare))
            .replace("@WRITE@", "\n".join(write))
            .replace("@ARGS@", "".join(", " + a for a in args))
            .replace("@INPUTS@", str(len(inputs))).replace("@OUTPUTS@", str(len(outputs)))
            .replace("@NAME@", name))
    return text.replace(f"    {name}_destroy(ctx);", "\n".join(closing)
                        + f"\n    {name}_destroy(ctx);")


def build_harness(export: Export, work: Path) -> Path:
    """The harness program for `export`, built in `work` against NAME.o."""
    source = work / f"{export.name}_harness.c"
    source.write_text(harness_source(export.manifest))
    program = work / f"{export.name}_harness"
    subprocess.run([*compiler(), "-O2", "-Wall", "-Werror", f"-I{export.directory}",
                    str(source), str(export.files["object"]), "-lm", "-lpthread", "-o",
                    str(program)], check=True, capture_output=True, text=True)
    return program


def run_c(export: Export, work: Path, inputs: list[np.ndarray], *, runs: int = 1,
          threads: int = 1, weights: Path | str | None = None, save: Path | None = None,
          program: Path | None = None) -> list[list[np.ndarray]]:
    """Each run's outputs ([run][output]) of the C harness on `inputs` (weights: the
    exported file by default; "" for the embedded ones)."""
    program = program or build_harness(export, work)
    manifest = export.manifest
    paths = []
    for k, array in enumerate(inputs):
        path = work / f"input{k}.bin"
        np.ascontiguousarray(array).tofile(path)
        paths.append(str(path))
    outs = [work / f"output{k}.bin" for k in range(len(manifest["outputs"]))]
    weights = export.files["weights"] if weights is None else weights
    done = subprocess.run([str(program), str(weights), str(threads),
                           str(runs), str(save) if save else "-", *paths, *map(str, outs)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise AssertionError(f"harness failed ({done.returncode}): {done.stderr}")
    results = []
    for path, spec in zip(outs, manifest["outputs"]):
        data = np.fromfile(path, np.dtype(spec["dtype"]))
        results.append(data.reshape((runs, *spec["shape"])))
    return [[results[k][r] for k in range(len(results))] for r in range(runs)]


CTYPES_SCRIPT = r"""
import ctypes, json, sys
import numpy as np

library, manifest_path, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
files = sys.argv[5:]
manifest = json.load(open(manifest_path))
name = manifest["name"]
lib = ctypes.CDLL(library)
create = getattr(lib, name + "_create")
create.restype, create.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
run = getattr(lib, name + "_run_array")
run.restype = ctypes.c_int
run.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_void_p),
                ctypes.POINTER(ctypes.c_void_p)]
error = getattr(lib, name + "_last_error")
error.restype, error.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
destroy = getattr(lib, name + "_destroy")
destroy.argtypes = [ctypes.c_void_p]
weights = manifest_path.rsplit("/", 1)[0] + "/" + manifest["weights"]["file"]
ctx = create(weights.encode(), threads)
if not ctx:
    sys.exit("create: " + error(None).decode())
inputs = [np.load(f) for f in files[:len(manifest["inputs"])]]
outputs = [np.empty(o["shape"], o["dtype"]) for o in manifest["outputs"]]
dims = (ctypes.c_int64 * max(1, len(manifest["dims"])))(*[d["value"] for d in manifest["dims"]])
ins = (ctypes.c_void_p * max(1, len(inputs)))(*[a.ctypes.data for a in inputs])
outs = (ctypes.c_void_p * max(1, len(outputs)))(*[a.ctypes.data for a in outputs])
results = []
for _ in range(runs):
    status = run(ctx, dims, ins, outs)
    if status:
        sys.exit(f"run: status {status}: " + error(ctx).decode())
    results.append([a.copy() for a in outputs])
bad = (ctypes.c_int64 * max(1, len(manifest["dims"])))(*[d["value"] + 1 for d in manifest["dims"]])
refused = run(ctx, bad, ins, outs) if manifest["dims"] else -1
message = error(ctx).decode()
destroy(ctx)
assert "graphc" not in sys.modules, "the ctypes process imported graphc"
for k, path in enumerate(files[len(manifest["inputs"]):]):
    np.save(path, np.stack([r[k] for r in results]))
print(json.dumps({"refused": refused, "message": message}))
"""


def run_ctypes(export: Export, work: Path, inputs: list[np.ndarray], *, runs: int = 1,
               threads: int = 1) -> tuple[list[list[np.ndarray]], dict]:
    """Each run's outputs from libNAME.so loaded by ctypes in a fresh Python (-I: no
    PYTHONPATH, so graphc cannot even be found from this checkout), and what a call with
    every dim off by one returned."""
    script = work / "ctypes_run.py"
    script.write_text(CTYPES_SCRIPT)
    files = []
    for k, array in enumerate(inputs):
        np.save(work / f"ctypes_in{k}.npy", array)
        files.append(str(work / f"ctypes_in{k}.npy"))
    outs = [str(work / f"ctypes_out{k}.npy") for k in range(len(export.manifest["outputs"]))]
    done = subprocess.run([sys.executable, "-I", str(script), str(export.files["library"]),
                           str(export.files["manifest"]), str(threads), str(runs), *files,
                           *outs], capture_output=True, text=True, timeout=600, cwd=work)
    if done.returncode:
        raise AssertionError(f"ctypes process failed ({done.returncode}): {done.stderr}")
    stacked = [np.load(o) for o in outs]
    return ([[s[r] for s in stacked] for r in range(runs)],
            json.loads(done.stdout.strip().splitlines()[-1]))
