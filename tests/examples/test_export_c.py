"""examples/export_c: the digits CNN exported (shortened Python training), main.c and
train.c built by its Makefile against the objects; main classifies the test set, train
trains from C and writes params that main then classifies with."""

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.export.harness import compiler

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "export_c"


def test_export_c_example_classifies_and_trains_from_c(tmp_path):
    pytest.importorskip("sklearn", reason="the digits come with scikit-learn (graphc[digits])")
    cc = compiler()
    if shutil.which("make") is None:
        pytest.skip("no make: the example builds with its Makefile")
    spec = importlib.util.spec_from_file_location("export_digits", EXAMPLE / "export_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "out"
    result = module.main(epochs=3, out=str(out), progress=False, verbose=False)
    assert result["infer"].manifest["dims"][0]["value"] == module.INFER_BATCH
    assert result["step"].manifest["training"]
    (out / "exported.stamp").touch()  # make must not export again
    subprocess.run(["make", "-C", str(EXAMPLE), f"OUT={out}", f"BIN={tmp_path}",
                    f"CC={' '.join(cc)}"], check=True, capture_output=True, text=True)

    def accuracy(*args) -> float:
        done = subprocess.run([str(tmp_path / args[0]), str(out), *map(str, args[1:])],
                              capture_output=True, text=True, check=True, timeout=600)
        return float(re.search(r"test accuracy (\d\.\d+)", done.stdout).group(1))

    assert accuracy("main", out / "digits" / "digits.weights.bin", 1) == pytest.approx(
        result["accuracy"], abs=0.003)  # the Python evaluation's (one digit of tolerance)
    assert accuracy("train", 3, 1) > 0.5  # three epochs from scratch, in C
    assert accuracy("main", out / "digits.trained.bin", 1) > 0.5
    assert (out / "digits_train.trained.bin").stat().st_size == \
        (out / "digits_train" / "digits_train.weights.bin").stat().st_size
