"""The PyTorch models exported to ONNX and imported into graphc by the real-model tests
(tests/onnx/test_models.py) and the ONNX benchmark (benchmarks/onnx_resnet.py): LeNet,
a ResNet-18-shaped CNN for 32x32 inputs, a Transformer encoder and a small
encoder-decoder CNN of issue 16's layers, each with fixed
weights from a seed, and `export`, which writes one to ONNX bytes as torch.onnx.export's
TorchScript exporter does (batch axis symbolic)."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18's shape for 32x32 images (CIFAR-style stem): a 3x3 stem, four stages of
    two basic blocks (strided convs and 1x1 projection shortcuts between stages), global
    average pooling, a linear classifier. `width` is the first stage's channels (64 in
    ResNet-18; the tests use a narrower one)."""

    def __init__(self, width: int = 64, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        layers, cin = [], width
        for k, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2**k
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class Encoder(nn.Module):
    """A Transformer encoder over token embeddings: an input projection, two post-norm
    encoder layers (multi-head attention, ReLU feed-forward), a classifier on the mean."""

    def __init__(self, features: int = 16, d_model: int = 32, heads: int = 4, layers: int = 2):
        super().__init__()
        self.project = nn.Linear(features, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 5)

    def forward(self, x):
        return self.head(self.encoder(self.project(x)).mean(dim=1))


class EncoderDecoder(nn.Module):
    """A small encoder-decoder CNN over 16x16 images built from the layers issue 16 added:
    a depthwise dilated conv, an asymmetric reflection pad, a ceil-mode max pool, a
    transposed conv (padding, output_padding), bilinear upsampling, a cumulative sum and
    ELU / Hardswish / Softplus / Mish activations."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.depthwise = nn.Conv2d(width, width, 3, padding=2, dilation=2, groups=width)
        self.pad = nn.ReflectionPad2d((1, 0, 1, 0))
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.up = nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1,
                                     output_padding=1)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.head = nn.Conv2d(width, 4, 1, groups=2 if width % 2 == 0 else 1)

    def forward(self, x):
        x = nn.functional.elu(self.stem(x))
        x = nn.functional.hardswish(self.depthwise(x)) + x
        x = nn.functional.softplus(self.down(self.pad(x)))  # 16 -> 8
        x = nn.functional.mish(self.up(self.pool(x)))  # 8 -> 4 -> 8
        return torch.cumsum(self.head(self.upsample(x)), dim=3)  # 8 -> 16


def seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    """The model in eval mode with weights drawn from `seed` (BatchNorm statistics too, so
    inference does not see the trivial mean 0 / variance 1)."""
    torch.manual_seed(seed)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        if isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def export(model: nn.Module, example: torch.Tensor, opset: int = 17) -> bytes:
    """The model as ONNX bytes (TorchScript exporter, batch axis named "batch"), with its
    BatchNorms kept as nodes (training=PRESERVE does not fold them into the convs), so
    the initializers are the PyTorch model's own parameters."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE,
                          do_constant_folding=False)
    return buffer.getvalue()
