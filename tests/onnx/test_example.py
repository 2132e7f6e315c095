"""examples/onnx_finetune.py in a short run (marked slow; CI's fine-tuning check is
tests/onnx/test_models.py): the imported model fine-tunes (its loss falls,
its accuracy on all ten digits rises from what it learned on five) and the written ONNX
file gives ONNX Runtime graphc's predictions."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "onnx_finetune.py"


@pytest.mark.slow  # ~35 s of CPU (PyTorch pretraining, two native compiles, 90 steps)
def test_onnx_finetune_example(tmp_path):
    pytest.importorskip("sklearn", reason="the digits come with scikit-learn (graphc[digits])")
    spec = importlib.util.spec_from_file_location("onnx_finetune", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(epochs=3, backend="llvm", out=str(tmp_path), verbose=False,
                         train_size=960)  # 90 steps of Adam
    assert result["losses"][-1] < result["losses"][0]
    assert result["after"] > result["before"] + 0.1, result
    assert result["onnxruntime_agrees"] is True
    assert Path(result["saved"]).is_file()
