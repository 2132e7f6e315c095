"""What an export refuses, with a nonzero code and a message, never a crash: wrong dims,
NULL pointers, overlapping buffers, bad param ids and sizes, damaged or foreign weights,
an id a kernel rejects; and what gc.export itself refuses, naming the problem."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import graphc as gc
from graphc.export import ExportError, toolchain
from tests.export.harness import compiler, run_c

PROBE = r"""
#include <stdio.h>
#include <string.h>
#include "probe.h"

static void report(const char *what, int status, const probe_ctx *ctx) {
    printf("%s|%d|%s\n", what, status, probe_last_error(ctx));
}

int main(int argc, char **argv) {
    float x[PROBE_INPUT_0_SIZE] = {0}, out[PROBE_OUTPUT_0_SIZE], w[PROBE_PARAM_0_SIZE];
    probe_ctx *ctx = probe_create(argv[1], 0);
    if (!ctx) { printf("create failed: %s\n", probe_last_error(NULL)); return 1; }
    report("ok", probe_run(ctx, PROBE_DIM_N, x, out), ctx);
    report("dims", probe_run(ctx, PROBE_DIM_N + 1, x, out), ctx);
    report("null ctx", probe_run(NULL, PROBE_DIM_N, x, out), NULL);
    report("null input", probe_run(ctx, PROBE_DIM_N, NULL, out), ctx);
    report("null output", probe_run(ctx, PROBE_DIM_N, x, NULL), ctx);
    report("overlap", probe_run(ctx, PROBE_DIM_N, x, (float *)x), ctx);
    report("output on param", probe_run(ctx, PROBE_DIM_N, x, probe_param_data(ctx, 0)), ctx);
    report("array null dims", probe_run_array(ctx, NULL, NULL, NULL), ctx);
    report("bad id", probe_get_param(ctx, PROBE_NUM_PARAMS, w, sizeof w), ctx);
    report("negative id", probe_set_param(ctx, -1, w, sizeof w), ctx);
    report("bad size", probe_get_param(ctx, 0, w, sizeof w - 4), ctx);
    report("null buffer", probe_set_param(ctx, 0, NULL, sizeof w), ctx);
    report("get", probe_get_param(ctx, 0, w, sizeof w), ctx);
    report("set", probe_set_param(ctx, 0, w, sizeof w), ctx);
    report("negative step", probe_set_step(ctx, -1), ctx);
    report("save null path", probe_save_weights(ctx, NULL), ctx);
    report("save unwritable", probe_save_weights(ctx, "/nonexistent-dir/w.bin"), ctx);
    printf("param_id|%d|%d\n", probe_param_id("W"), probe_param_id("nope"));
    printf("param_data|%d|%d\n", probe_param_data(ctx, 99) == NULL, probe_param_bytes(99) == -1);
    printf("threads|%d|\n", probe_threads(ctx));
    probe_destroy(ctx);
    probe_destroy(NULL);
    for (int k = 2; k < argc; k++) {
        probe_ctx *bad = probe_create(argv[k][0] ? argv[k] : NULL, 1);
        printf("create %d|%d|%s\n", k, bad == NULL, probe_last_error(NULL));
        probe_destroy(bad);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """An exported MLP (logits; N=4) and the probe program built against it."""
    cc = compiler()
    rng = np.random.default_rng(0)
    x = gc.input("x", ("N", 6))
    w = gc.param("W", rng.normal(size=(6, 3)).astype(np.float32))
    b = gc.param("b", np.zeros(3, np.float32))
    f = gc.compile([x], gc.relu(x @ w + b), threads=1)
    work = tmp_path_factory.mktemp("probe")
    exported = gc.export(f, work / "out", "probe", dims={"N": 4})
    source = work / "probe_main.c"
    source.write_text(PROBE)
    program = work / "probe_main"
    subprocess.run([*cc, "-O2", "-Wall", "-Werror", f"-I{exported.directory}", str(source),
                    str(exported.files["object"]), "-lm", "-lpthread", "-o", str(program)],
                   check=True)
    return exported, program, work


def _lines(program, *args) -> dict[str, tuple[str, str]]:
    done = subprocess.run([str(program), *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return {what: (code, message) for what, code, message in
            (line.split("|", 2) for line in done.stdout.splitlines())}


def test_bad_calls_come_back_as_codes_with_messages(probe):
    exported, program, work = probe
    seen = _lines(program, exported.files["weights"])
    assert seen["ok"] == ("0", "")
    assert seen["dims"] == ("2", "probe: dim N: this export was compiled for N=4, got 5 "
                                 "(shapes are fixed at export: export again with "
                                 "dims={'N': 5} for that shape)")
    assert seen["null ctx"] == ("1", "probe: run: the context is NULL")
    assert seen["null input"] == ("1", "probe: run: input 'x' is NULL")
    assert seen["null output"] == ("1", "probe: run: output 'out0' is NULL")
    assert seen["overlap"] == ("1", "probe: run: output 'out0' overlaps input 'x'")
    assert seen["output on param"] == ("1", "probe: run: output 'out0' overlaps param 'W'")
    assert seen["array null dims"][0] == "1" and "dims is NULL" in seen["array null dims"][1]
    assert seen["bad id"] == ("1", "probe: get_param: no param has id 2 (ids are 0 to 1)")
    assert seen["negative id"] == ("1", "probe: set_param: no param has id -1 (ids are 0 to 1)")
    assert seen["bad size"] == ("1", "probe: get_param: param 'W' has 72 bytes, got 68")
    assert seen["null buffer"][0] == "1" and "NULL" in seen["null buffer"][1]
    assert seen["get"] == seen["set"] == ("0", "")
    assert seen["negative step"][0] == "1"
    assert seen["save null path"][0] == "1"
    assert seen["save unwritable"][0] == "8" and "/nonexistent-dir/w.bin" in \
        seen["save unwritable"][1]
    assert seen["param_id"] == ("0", "-1")
    assert seen["param_data"] == ("1", "1")
    assert seen["threads"] == ("1", "")  # threads=0 and a tiny function: one thread


def test_missing_damaged_or_foreign_weights_are_refused_at_create(probe, tmp_path):
    exported, program, work = probe
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(exported.files["weights"].read_bytes()[:-4])
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not weights at all" * 10)
    foreign = tmp_path / "foreign.bin"  # the same format, another model's params
    gc.export.weights.write(foreign, [("W", np.zeros((6, 4), np.float32)),
                                      ("b", np.zeros(4, np.float32))])
    seen = _lines(program, exported.files["weights"], tmp_path / "missing.bin", truncated,
                  garbage, foreign, "")
    messages = [seen[f"create {k}"] for k in range(2, 7)]
    assert all(refused == "1" for refused, _ in messages)
    missing, short, junk, other, null = (m for _, m in messages)
    assert "cannot open the weights file" in missing and "No such file" in missing
    assert "has 200 bytes (its header says 204); this model's weights take 204" in short
    assert "not a graphc weights file" in junk
    assert "the weights of another model" in other
    assert "no embedded weights" in null


def test_saved_weights_are_the_exported_file_and_read_back(probe, tmp_path):
    exported, program, work = probe
    saved = tmp_path / "saved.bin"
    source = tmp_path / "save.c"
    source.write_text('#include "probe.h"\nint main(int c, char **v) {\n'
                      '  probe_ctx *ctx = probe_create(v[1], 1);\n'
                      '  return ctx == 0 || probe_save_weights(ctx, v[2]);\n}\n')
    subprocess.run([*compiler(), f"-I{exported.directory}", str(source),
                    str(exported.files["object"]), "-lm", "-lpthread", "-o",
                    str(tmp_path / "save")], check=True)
    subprocess.run([str(tmp_path / "save"), str(exported.files["weights"]), str(saved)],
                   check=True)
    assert saved.read_bytes() == exported.files["weights"].read_bytes()
    values = gc.export.read_weights(exported.files["manifest"], saved)
    assert list(values) == ["W", "b"] and values["W"].shape == (6, 3)


def test_an_id_a_kernel_rejects_is_a_code_and_the_python_message(tmp_path):
    compiler()
    ids = gc.input("ids", (5,), dtype="int64")
    table = gc.param("table", np.arange(12, dtype=np.float32).reshape(4, 3))
    f = gc.compile([ids], gc.embedding(ids, table), threads=1)
    bad = np.array([0, 1, 7, 2, 3], np.int64)
    with pytest.raises(ValueError) as python:
        f(bad)
    exported = gc.export(f, tmp_path / "out", "lookup")
    good = np.array([3, 2, 1, 0, 3], np.int64)
    (got,) = run_c(exported, tmp_path, [good])
    np.testing.assert_array_equal(got[0], f(good))
    with pytest.raises(AssertionError) as c_side:
        run_c(exported, tmp_path, [bad])
    assert "status 3: lookup: run: step" in str(c_side.value)
    assert str(python.value) in str(c_side.value)


# ----- what gc.export refuses -------------------------------------------------------------

@pytest.fixture
def small():
    x = gc.input("x", ("N", 2))
    w = gc.param("w", np.ones((2, 2), np.float32))
    return gc.compile([x], x @ w)


def test_export_refuses_bad_arguments_naming_them(small, tmp_path):
    with pytest.raises(TypeError, match="expected a function made by gc.compile"):
        gc.export(lambda x: x, tmp_path)
    with pytest.raises(ValueError, match="name must be a C identifier"):
        gc.export(small, tmp_path, "my-model", dims={"N": 2})
    with pytest.raises(ValueError, match="is a C or Python keyword"):
        gc.export(small, tmp_path, "static", dims={"N": 2})
    with pytest.raises(ValueError, match=r"has not been called: pass dims=\{'N': 32\}"):
        gc.export(small, tmp_path)
    with pytest.raises(ValueError, match=r"dims names \['M'\], which no input has"):
        gc.export(small, tmp_path, dims={"N": 2, "M": 3})
    with pytest.raises(ValueError, match="dim N must be an int >= 0"):
        gc.export(small, tmp_path, dims={"N": -1})
    with pytest.raises(ValueError, match=r"dims gives no value for \['N'\]"):
        gc.export(small, tmp_path, dims={})
    with pytest.raises(ExportError, match="is for aarch64, this machine is x86_64"):
        gc.export(small, tmp_path, dims={"N": 2}, target="aarch64")
    with pytest.raises(ValueError, match="unknown target"):
        gc.export(small, tmp_path, dims={"N": 2}, target="no-such-cpu")
    assert not any(tmp_path.iterdir())  # nothing written by a refused export


def test_export_refuses_params_sharing_a_name(tmp_path):
    x = gc.input("x", (2,))
    a, b = gc.param("w", np.ones(2, np.float32)), gc.param("w", np.ones(2, np.float32))
    with pytest.raises(ValueError, match="params 0 and 1 are both named 'w'"):
        gc.export(gc.compile([x], x * a + b), tmp_path)


def test_without_a_c_compiler_export_says_so(small, tmp_path, monkeypatch):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang on it
    assert toolchain.find().cc is None
    with pytest.raises(ExportError, match="needs a C compiler .* none found"):
        gc.export(small, tmp_path / "out", dims={"N": 2})


def test_without_ld_and_objcopy_the_compiler_merges_and_the_library_still_runs(small,
                                                                               tmp_path,
                                                                               monkeypatch):
    """cc -r merges the objects; the internal symbols stay global in NAME.o (one export
    per program then), the shared library still exports only the API."""
    compiler()
    found = toolchain.find()
    monkeypatch.setattr(toolchain, "find", lambda: toolchain.Toolchain(found.cc, None, None))
    exported = gc.export(small, tmp_path / "out", "plain", dims={"N": 3})
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(exported.files["library"])],
                             capture_output=True, text=True).stdout if shutil.which("nm") else ""
    assert "graphc_entry" not in symbols
    xb = np.arange(6, dtype=np.float32).reshape(3, 2)
    (got,) = run_c(exported, tmp_path, [xb])
    np.testing.assert_array_equal(got[0], small(xb))
