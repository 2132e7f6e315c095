"""Each example in a shortened run whose loss must fall; the full runs (marked slow) must
reach their targets: CNN >= 97% test accuracy, Transformer >= 95% token accuracy."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BACKEND = "llvm"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linear_regression_finds_b_and_w(capsys):
    result = load("linear_regression").main(steps=60, backend=BACKEND)
    losses = result["losses"]
    assert losses[-1] < losses[0] / 100
    assert all(b <= a for a, b in zip(losses, losses[1:]))  # full-batch GD, small steps
    assert result["b"] == pytest.approx(result["least_squares"][0], abs=0.02)
    assert result["w"] == pytest.approx(result["least_squares"][1], abs=0.05)
    assert "learned        b = " in capsys.readouterr().out


def test_sum_of_sigmoids_loss_falls(tmp_path):
    plot = tmp_path / "fit.png"
    results = load("sum_of_sigmoids").main(units=(1, 8), steps=150, restarts=1, backend=BACKEND,
                                           plot=str(plot))
    for activation in ("sigmoid", "relu"):
        for k in (1, 8):
            losses = results[activation, k]["losses"]
            assert losses[-1] < losses[0]
        assert results[activation, 8]["losses"][-1] < results[activation, 1]["losses"][-1]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert results["plot"] is None and not plot.exists()
    else:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["mlp_digits", "cnn_digits"])
def test_digits_examples_loss_falls_and_curves_are_saved(name, tmp_path):
    pytest.importorskip("sklearn", reason="the digits come with scikit-learn (graphc[digits])")
    pytest.importorskip("matplotlib", reason="curves need matplotlib (graphc[plot])")
    result = load(name).main(epochs=2, backend=BACKEND, progress=False, verbose=False,
                             out=str(tmp_path / "out"))
    losses = result["history"]["loss"]
    assert losses[1] < losses[0]
    assert result["test"]["accuracy"] > 0.3  # far above chance (0.1) after 2 epochs
    assert result["curves"] == tmp_path / "out" / f"{name}_curves.png"
    assert _is_png(result["curves"])


def test_cnn_example_draws_its_training_step(tmp_path):
    pytest.importorskip("sklearn", reason="the digits come with scikit-learn (graphc[digits])")
    load("cnn_digits").main(epochs=1, backend=BACKEND, graphs=str(tmp_path), progress=False,
                            verbose=False)
    for stage in ("forward", "backward", "optimized"):
        assert (tmp_path / f"cnn_train_step.{stage}.dot").read_text().startswith("digraph")


def test_transformer_loss_falls():
    result = load("transformer_reverse").main(epochs=2, train_size=1000, backend=BACKEND,
                                              progress=False, verbose=False)
    losses = result["history"]["loss"]
    assert losses[1] < losses[0]
    assert np.isfinite(result["test"]["loss"])
    assert result["curves"] is None  # no out: nothing written


def test_an_example_saves_its_curves_from_the_command_line(tmp_path):
    pytest.importorskip("matplotlib", reason="curves need matplotlib (graphc[plot])")
    done = subprocess.run([sys.executable, str(EXAMPLES / "transformer_reverse.py"),
                           "--epochs", "1", "--train-size", "200", "--backend", "numpy",
                           "--out", str(tmp_path / "curves")], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "curves" / "transformer_reverse_curves.png"
    assert f"wrote {path}" in done.stdout and _is_png(path)
    assert "\r" not in done.stderr  # not a terminal: no progress bar


@pytest.mark.slow
def test_cnn_reaches_97_percent():
    pytest.importorskip("sklearn", reason="the digits come with scikit-learn (graphc[digits])")
    result = load("cnn_digits").main(backend=BACKEND, progress=False, verbose=False)
    assert result["test"]["accuracy"] >= 0.97


@pytest.mark.slow
def test_mlp_reaches_95_percent():
    pytest.importorskip("sklearn", reason="the digits come with scikit-learn (graphc[digits])")
    result = load("mlp_digits").main(backend=BACKEND, progress=False, verbose=False)
    assert result["test"]["accuracy"] >= 0.95


@pytest.mark.slow
def test_transformer_reaches_95_percent_token_accuracy():
    result = load("transformer_reverse").main(backend=BACKEND, progress=False, verbose=False)
    assert result["test"]["accuracy"] >= 0.95


@pytest.mark.slow
def test_sum_of_sigmoids_loss_falls_as_units_are_added():
    units = (1, 2, 4, 8, 16)
    results = load("sum_of_sigmoids").main(units=units, backend=BACKEND, plot=None,
                                           verbose=False)
    for activation in ("sigmoid", "relu"):
        finals = [results[activation, k]["losses"][-1] for k in units]
        assert all(b < a for a, b in zip(finals, finals[1:])), (activation, finals)


def test_demo_trains_and_draws_into_the_out_directory(tmp_path, capsys):
    result = load("demo").main(out_dir=str(tmp_path / "out"), backend=BACKEND)
    assert result["losses"][-1] < result["losses"][0] / 2
    assert result["accuracy"] > 0.7  # three overlapping blobs
    forward = tmp_path / "out" / "demo_forward.dot"
    step = tmp_path / "out" / "demo_train_step.dot"
    assert result["written"] == [forward, step]
    assert forward.read_text().startswith('digraph "forward"')
    assert step.read_text().startswith('digraph "train_step"')
    assert f"wrote {forward} and {step}" in capsys.readouterr().out


def test_demo_takes_backend_and_out_on_its_command_line(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "demo.py"), "--backend", "numpy",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "demo_train_step.dot").read_text().startswith('digraph "train_step"')
