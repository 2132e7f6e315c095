"""Exports for a target: x86-64-v3 code holds no AVX-512 instruction (checked in the
disassembly) and runs here; code for a CPU this one is not is refused at NAME_create with
a message; weights embedded in the object; two exports linked into one program."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.runtime import target as targets
from graphc.export import code
from tests.export.harness import compiler, run_c
from tests.models import builders

# AVX-512 in AT&T syntax: its registers (zmm, the mask registers k0-k7, x/ymm16-31), masking,
# embedded broadcasts and instructions only it has.
AVX512 = re.compile(r"%zmm|%k[0-7]\b|\{%k|%[xy]mm(?:1[6-9]|2[0-9]|3[01])\b|\{1to\d+\}|"
                    r"\bvpternlog|\bvpermt2|\bvcompress|\bvexpand|\bkmov")


def _logits(batch: int = 64):
    inputs, _, (w1, b1, w2, b2), data = builders.mlp(np.float32)
    x = inputs[0]
    f = gc.compile([x], gc.tanh(x @ w1 + b1) @ w2 + b2, threads=1)
    xb = np.random.default_rng(5).normal(size=(batch, 20)).astype(np.float32)
    return f, xb


def _disassembly(exported, f, binding, chosen) -> str:
    """objdump -d of the export's object, or (no objdump) LLVM's assembly of its code."""
    objdump = shutil.which("objdump")
    if objdump:
        return subprocess.run([objdump, "-d", "--no-show-raw-insn",
                               str(exported.files["object"])], capture_output=True, text=True,
                              check=True).stdout
    built = code.build(f.program, binding, chosen)
    return targets.assembly(built.ir, chosen)


def test_x86_64_v3_export_has_no_avx512_and_runs_as_python_does(tmp_path):
    compiler()
    f, xb = _logits()
    v3 = gc.compile(f.inputs, f.outputs[0], threads=1, target="x86-64-v3")
    exported = gc.export(v3, tmp_path / "v3", "v3", target="x86-64-v3", dims={"N": 64})
    assert exported.manifest["target"]["name"] == "x86-64-v3"
    assert "avx2" in exported.manifest["target"]["checked_features"]
    assert "avx512f" not in exported.manifest["target"]["checked_features"]
    text = _disassembly(exported, v3, {sym: 64 for sym in _symbols(v3)},
                        targets.resolve("x86-64-v3"))
    assert "%ymm" in text  # AVX2 code was emitted, and looked at
    found = AVX512.findall(text)
    assert not found, f"AVX-512 in x86-64-v3 code: {sorted(set(found))[:10]}"
    if targets.resolve("x86-64-v3").missing_on_host():
        pytest.skip("this CPU cannot run x86-64-v3 code")
    (got,) = run_c(exported, tmp_path, [xb])
    assert got[0].tobytes() == v3(xb).tobytes()


def _symbols(f):
    return [d for n in f.inputs for d in n.shape if not isinstance(d, int)]


def test_x86_64_v4_export_has_avx512_and_a_cpu_without_it_is_refused(tmp_path):
    compiler()
    f, xb = _logits()
    chosen = targets.resolve("x86-64-v4")
    exported = gc.export(f, tmp_path / "v4", "v4", target="x86-64-v4", dims={"N": 64})
    text = _disassembly(exported, f, {s: 64 for s in _symbols(f)}, chosen)
    assert AVX512.search(text), "no AVX-512 instruction in x86-64-v4 code: the check is blind"
    if not chosen.missing_on_host():
        pytest.skip("this CPU has AVX-512: nothing to refuse")
    with pytest.raises(AssertionError) as refused:
        run_c(exported, tmp_path, [xb])
    message = str(refused.value)
    assert "harness failed (3)" in message  # NAME_create returned NULL: no SIGILL
    assert "this CPU lacks avx512" in message and "target x86-64-v4" in message


def test_embedded_weights_need_no_file(tmp_path):
    compiler()
    f, xb = _logits(8)
    want = f(xb)
    exported = gc.export(f, tmp_path / "out", "embedded", embed_weights=True)
    assert exported.manifest["weights"]["embedded"]
    assert exported.manifest["dims"] == [{"name": "N", "value": 8, "argument": "dim_n"}]
    exported.files["weights"].unlink()  # the object holds them
    (got,) = run_c(exported, tmp_path, [xb], weights="")
    assert got[0].tobytes() == want.tobytes()


TWO = r"""
#include <stdio.h>
#include "first.h"
#include "second.h"
int main(int argc, char **argv) {
    first_ctx *a = first_create(argv[1], 1);
    second_ctx *b = second_create(argv[2], 1);
    float x[FIRST_INPUT_0_SIZE], ya[FIRST_OUTPUT_0_SIZE], yb[SECOND_OUTPUT_0_SIZE];
    for (int k = 0; k < FIRST_INPUT_0_SIZE; k++) x[k] = (float)k / 100.0f;
    if (!a || !b || first_run(a, 4, x, ya) || second_run(b, 4, x, yb)) return 1;
    for (int k = 0; k < FIRST_OUTPUT_0_SIZE; k++) printf("%.9g ", ya[k]);
    printf("\n");
    for (int k = 0; k < SECOND_OUTPUT_0_SIZE; k++) printf("%.9g ", yb[k]);
    printf("\n");
    first_destroy(a);
    second_destroy(b);
    return 0;
}
"""


def test_two_exports_link_into_one_program(tmp_path):
    """Both objects define graphc_entry and GEMM helpers: only the API stays global."""
    cc = compiler()
    x = gc.input("x", ("N", 20))
    f1, _ = _logits()
    second_w = gc.param("w", np.full((20, 3), 0.5, np.float32))
    f2 = gc.compile([x], gc.sigmoid(x @ second_w), threads=1)
    one = gc.export(f1, tmp_path / "one", "first", dims={"N": 4})
    two = gc.export(f2, tmp_path / "two", "second", dims={"N": 4})
    source = tmp_path / "two.c"
    source.write_text(TWO)
    subprocess.run([*cc, "-O2", "-Wall", "-Werror", f"-I{one.directory}", f"-I{two.directory}",
                    str(source), str(one.files["object"]), str(two.files["object"]), "-lm",
                    "-lpthread", "-o", str(tmp_path / "both")], check=True)
    out = subprocess.run([str(tmp_path / "both"), str(one.files["weights"]),
                          str(two.files["weights"])], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    xb = (np.arange(80, dtype=np.float32) / 100.0).reshape(4, 20)
    np.testing.assert_array_equal(np.array(out[0].split(), np.float32), f1(xb).ravel())
    np.testing.assert_array_equal(np.array(out[1].split(), np.float32), f2(xb).ravel())
