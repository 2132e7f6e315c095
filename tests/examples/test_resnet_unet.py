"""The ResNet and U-Net examples: a shortened run of each must learn (CI), and the full
runs (marked slow) must reach their targets: the ResNet >= 98% test accuracy, the U-Net
a PSNR gain of at least 5 dB on held-out digits."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytest.importorskip("sklearn", reason="the digits come with scikit-learn (graphc[digits])")


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resnet_learns_in_a_short_run():
    # 10 short epochs (8 batches each) of a narrow net: the compile is most of the time
    result = load("resnet_digits").main(epochs=10, train_size=512, width=8, progress=False,
                                        verbose=False)
    losses = result["history"]["loss"]
    assert losses[-1] < losses[0]
    assert result["test"]["accuracy"] > 0.4  # far above chance (0.1); 0.71 seen
    model = result["model"]
    running = model.stem[1].running_var.value  # BatchNorm's statistics moved in the step
    assert not (running == 1.0).all()


def test_unet_denoises_in_a_short_run():
    result = load("unet_denoise").main(epochs=8, train_size=512, width=8, progress=False,
                                       verbose=False)
    losses = result["history"]["val_loss"]
    assert losses[-1] < losses[0]
    assert result["gain"] > 1.0  # dB; 3.4 seen


@pytest.mark.slow
def test_resnet_reaches_98_percent():
    result = load("resnet_digits").main(progress=False, verbose=False)
    assert result["test"]["accuracy"] >= 0.98


@pytest.mark.slow
def test_unet_gains_5_db():
    result = load("unet_denoise").main(progress=False, verbose=False)
    assert result["gain"] >= 5.0
