"""Fine-tune a model built elsewhere: a small residual CNN trained in PyTorch on the digits
0-4 only, handed over as an ONNX file, imported into graphc, fine-tuned there on all ten
digits, and written back as ONNX for ONNX Runtime.

    python examples/onnx_finetune.py [--model FILE.onnx] [--epochs 6] [--backend llvm|numpy]
        [--out DIR]

Without --model, PyTorch (the test extra) makes the model; with it, any ONNX classifier of
(N, 1, 8, 8) images into 10 classes is fine-tuned instead. gc.onnx.load turns the file's
inputs into gc.inputs (the batch dim symbolic), its initializers into gc.params named as
in the file, and its nodes into graphc ops, so gc.grad differentiates the imported graph
like any other. BatchNorm runs in inference mode (the file's running statistics are kept
as buffers, not trained). Writes DIR/onnx_finetune.onnx (default: the current directory).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import graphc as gc


def pretrained_in_pytorch(x: np.ndarray, y: np.ndarray, path: Path, epochs: int = 4) -> Path:
    """A small residual CNN trained by PyTorch on the digits 0-4 only, exported to `path`."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, channels: int):
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), Block(16),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    known = y < 5
    xs, ys = torch.from_numpy(x[known]), torch.from_numpy(y[known].astype(np.int64))
    for _ in range(epochs):
        for k in torch.randperm(len(xs)).split(32):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xs[k]), ys[k]).backward()
            optimizer.step()
    model.eval()
    torch.onnx.export(model, (xs[:2],), str(path), dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    return path


def accuracy(predict, x: np.ndarray, y: np.ndarray) -> float:
    (logits,) = predict(x)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def main(model: str | None = None, epochs: int = 6, backend: str = "llvm",
         out: str | None = None, verbose: bool = True, train_size: int | None = None) -> dict:
    """Import, fine-tune (on the first `train_size` training digits, default all), write
    back; returns the test accuracies before and after, the epoch losses, the file."""
    images, labels = gc.data.load_digits()
    images = images[:, None]  # (N, 1, 8, 8)
    x_train, x_test, y_train, y_test = gc.data.train_test_split(images, labels, test_size=0.2,
                                                                seed=0)
    if model is None:
        model = pretrained_in_pytorch(x_train, y_train, Path(tempfile.mkdtemp()) / "cnn.onnx")
    x_train, y_train = x_train[:train_size], y_train[:train_size]

    imported = gc.onnx.load(model)  # inputs, outputs, params named as in the file
    (image,), (logits,) = imported.inputs, imported.outputs
    predict = gc.compile([image], [logits], backend=backend)
    before = accuracy(predict, x_test, y_test)

    label = gc.input("label", ("N",), "int32")
    loss = gc.softmax_cross_entropy(logits, label)
    optimizer = gc.optim.Adam(imported.params, lr=3e-3)  # graphc's optimizers take them too
    step = gc.compile([image, label], loss, updates=optimizer.updates(loss), backend=backend)

    rng = np.random.default_rng(0)
    losses = []
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        # batches of one size: the LLVM backend compiles each batch size it is called with
        batches = [order[k:k + 32] for k in range(0, len(order) - 31, 32)]
        total = [float(step(x_train[k], y_train[k])) for k in batches]
        losses.append(float(np.mean(total)))
        if verbose:
            print(f"epoch {epoch + 1}: loss {losses[-1]:.4f}, test accuracy "
                  f"{accuracy(predict, x_test, y_test):.4f}")
    after = accuracy(predict, x_test, y_test)

    path = Path(out or ".") / "onnx_finetune.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    gc.onnx.save(predict, path, output_names=["logits"])  # the fine-tuned weights
    result = {"before": before, "after": after, "losses": losses, "saved": str(path)}
    try:
        import onnxruntime
    except ImportError:
        result["onnxruntime_agrees"] = None
    else:
        (theirs,) = onnxruntime.InferenceSession(str(path)).run(None, {"image": x_test})
        result["onnxruntime_agrees"] = bool(np.array_equal(theirs.argmax(1),
                                                           predict(x_test)[0].argmax(1)))
    if verbose:
        print(f"test accuracy: {before:.4f} as imported (trained on digits 0-4), {after:.4f} "
              f"fine-tuned in graphc; wrote {path} (ONNX Runtime agrees: "
              f"{result['onnxruntime_agrees']})")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an ONNX classifier of (N, 1, 8, 8) images")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--backend", choices=("llvm", "numpy"), default="llvm")
    parser.add_argument("--out", default=None, help="where to write onnx_finetune.onnx")
    args = parser.parse_args()
    main(args.model, args.epochs, args.backend, args.out)
