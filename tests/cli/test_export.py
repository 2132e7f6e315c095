"""`graphc export SCRIPT -o DIR -k K` (graphc/cli/export.py)."""

from __future__ import annotations

import json

from graphc.cli import main
from tests.export.harness import compiler

SCRIPT = '''
import sys
import numpy as np
import graphc as gc

x = gc.input("x", ("N", 3))
w = gc.param("w", np.eye(3, dtype=np.float32))
first = gc.compile([x], x + 1.0)
second = gc.compile([x], x @ w * float(sys.argv[1]))
second(np.ones((5, 3), np.float32))
'''


def test_export_command_exports_the_kth_function_with_its_last_shapes(tmp_path, capsys):
    compiler()
    script = tmp_path / "two_functions.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    status = main(["export", str(script), "-o", str(out), "-k", "1", "--name", "scaled", "--",
                             "2.0"])
    assert status == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "exported function 1 of two_functions.py" in printed and "libscaled.so" in printed
    manifest = json.loads((out / "scaled.json").read_text())
    assert manifest["dims"][0]["value"] == 5 and manifest["params"][0]["name"] == "w"
    assert (out / "scaled.o").is_file() and (out / "README.txt").is_file()


def test_export_command_refusals(tmp_path, capsys):
    script = tmp_path / "nothing.py"
    script.write_text("x = 1\n")
    assert main(["export", str(tmp_path / "missing.py"), "-o", str(tmp_path)]) == 2
    assert "no such script" in capsys.readouterr().err
    assert main(["export", str(script), "-o", str(tmp_path)]) == 1
    assert "compiled nothing" in capsys.readouterr().err
    two = tmp_path / "two.py"
    two.write_text(SCRIPT)
    assert main(["export", str(two), "-o", str(tmp_path / "o"), "-k", "2", "--", "1"]) == 2
    assert "compiled 2 function(s), numbered 0 to 1" in capsys.readouterr().err
    assert main(["export", str(two), "-o", str(tmp_path / "o"), "--dims", "N:4", "--",
                           "1"]) == 2
    assert "expected NAME=INT" in capsys.readouterr().err
    failing = tmp_path / "failing.py"
    failing.write_text("raise RuntimeError('boom')\n")
    assert main(["export", str(failing), "-o", str(tmp_path / "o")]) == 1
    assert "failing.py raised RuntimeError" in capsys.readouterr().err


def test_graphc_export_reaches_the_export_command_and_is_listed(tmp_path, capsys):
    compiler()
    script = tmp_path / "two_functions.py"
    script.write_text(SCRIPT)
    assert main(["export", str(script), "-o", str(tmp_path / "o"), "-k", "1", "--", "3"]) == 0
    assert (tmp_path / "o" / "model.h").is_file() and (tmp_path / "o" / "model.o").is_file()
    capsys.readouterr()
    assert main([]) == 2
    assert "export" in capsys.readouterr().err
