"""`graphc profile SCRIPT`: profile the k-th function a script compiled with the arguments
of its last call; print the table, write a trace."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from graphc.cli import main

SCRIPT = """
import sys
import numpy as np
import graphc as gc

backend = sys.argv[1] if len(sys.argv) > 1 else "numpy"
x = gc.input("x", ("N", 3))
w = gc.param("w", np.ones((3, 2), np.float32))
loss = gc.mean(gc.tanh(x @ w))
(g,) = gc.grad(loss, [w])
step = gc.compile([x], loss, updates={w: w - 0.1 * g}, backend=backend, name="tiny_step")
predict = gc.compile([x], x @ w, backend=backend, name="predict")
for n in (4, 6):
    step(np.ones((n, 3), np.float32))
"""


def script(tmp_path, body: str = SCRIPT):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_profile_writes_a_trace_of_the_first_function(tmp_path, capsys, monkeypatch, backend):
    path = script(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["profile", str(path), "--calls", "2", "--", backend]) == 0
    out = capsys.readouterr().out
    trace_file = tmp_path / "model.0.tiny_step.trace.json"
    assert out.startswith(f"profile of tiny_step ({backend} backend, mean of 2 call(s))")
    assert f"wrote {trace_file} (open it in https://ui.perfetto.dev or chrome://tracing)" in out
    trace = json.loads(trace_file.read_text())
    assert trace["otherData"]["function"] == "tiny_step"
    assert trace["otherData"]["backend"] == backend
    kernels = [e for e in trace["traceEvents"] if e.get("cat") == "kernel"]
    assert kernels and {"(6, 2)"} & {e["args"]["shape"] for e in kernels}  # the last call's N


def test_profile_picks_a_function_by_name_and_writes_where_o_says(tmp_path, capsys):
    body = SCRIPT + "predict(np.ones((2, 3), np.float32))\n"
    assert main(["profile", str(script(tmp_path, body)), "-k", "predict", "--calls", "1",
                 "-o", str(tmp_path / "traces" / "p.json")]) == 0
    trace = json.loads((tmp_path / "traces" / "p.json").read_text())
    assert trace["otherData"]["function"] == "predict"
    assert "profile of predict" in capsys.readouterr().out


def test_profile_into_a_directory(tmp_path):
    assert main(["profile", str(script(tmp_path)), "-k", "0", "--calls", "1", "-o",
                 str(tmp_path / "out") + "/"]) == 0
    assert (tmp_path / "out" / "model.0.tiny_step.trace.json").is_file()


@pytest.mark.parametrize("argv, message", [
    (["-k", "2"], r"-k 2: the script compiled 2 function\(s\) \(0: tiny_step; 1: predict\)"),
    (["-k", "train"], "-k train: no compiled function has that name"),
    (["-k", "1"], r"function 1 \(predict\) was compiled but never called: there are no "
                  "arguments to profile it with"),
    (["-o", "trace.txt"], r"-o trace.txt: a trace is a .json file"),
    (["--calls", "0"], "--calls must be at least 1, got 0"),
])
def test_profile_errors_say_what_is_wrong(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["profile", str(script(tmp_path)), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphc: error: ")
    assert re.search(message, err), err
    assert not list(tmp_path.glob("*.json"))


def test_a_script_that_compiles_nothing(tmp_path, capsys):
    assert main(["profile", str(script(tmp_path, "print('hi')\n"))]) == 1
    assert "compiled nothing" in capsys.readouterr().err
