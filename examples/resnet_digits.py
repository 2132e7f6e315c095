"""A small ResNet on scikit-learn's 8x8 digits, written as a PyTorch user writes one.

A stem convolution, three residual blocks (conv-BatchNorm-ReLU twice with an identity
shortcut; the second block halves the resolution with a strided conv and a 1x1 strided
projection on its shortcut), global average pooling and a linear classifier. Training
batches are augmented (shifts by a pixel, small rotations); AdamW follows a one-cycle
learning rate (and beta1) schedule stepped after every batch; the loss is cross entropy
with label smoothing; BatchNorm's running statistics are updated inside the compiled step
and used for evaluation. Reports accuracy on a held-out 20% of the digits.

    python examples/resnet_digits.py [--epochs 20] [--backend llvm|numpy] [--out DIR]

Writes the loss and accuracy curves to DIR/resnet_digits_curves.png (needs matplotlib).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import graphc as gc
from graphc import nn


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): torchvision's basic block."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        if stride == 1 and in_channels == channels:
            self.shortcut = nn.Identity()
        else:  # match the shapes: a strided 1x1 projection
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """(N, 1, 8, 8) digits -> (N, 10) logits."""

    def __init__(self, width: int = 32):
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.layers = nn.Sequential(BasicBlock(width, width),             # 8 x 8
                                    BasicBlock(width, 2 * width, stride=2),  # 4 x 4
                                    BasicBlock(2 * width, 2 * width))
        self.pool = nn.AdaptiveAvgPool2d(1)                                # global average
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(2 * width, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.layers(self.stem(x)))))


def main(epochs: int = 20, backend: str = "llvm", progress: bool | None = None,
         verbose: bool = True, out: str | None = None, train_size: int | None = None,
         width: int = 32, threads: int | None = None) -> dict:
    images, labels = gc.data.load_digits()
    images = images[:, None]                                         # (N, 1, 8, 8)
    x_train, x_test, y_train, y_test = gc.data.train_test_split(images, labels,
                                                                test_size=0.2, seed=0)
    if train_size is not None:  # a shortened run (tests)
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    normalize = gc.data.Standardize(per_feature=False).fit(x_train)
    augment = gc.data.Compose(gc.data.RandomShift(1), gc.data.RandomRotation(10))

    def augment_then_normalize(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return normalize.transform(np.clip(augment(batch, rng), 0.0, 1.0))

    nn.manual_seed(0)
    model = ResNet(width)
    batch_size = 64
    steps_per_epoch = -(-len(x_train) // batch_size)
    optimizer = gc.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = gc.optim.OneCycleLR(optimizer, max_lr=3e-3, epochs=epochs,
                                   steps_per_epoch=steps_per_epoch)
    trainer = gc.train.Trainer(model, optimizer, schedule=schedule, backend=backend,
                               loss_options={"label_smoothing": 0.1}, threads=threads)
    x_test = normalize.transform(x_test)
    start = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=batch_size,
                          validation=(x_test, y_test), transform=augment_then_normalize,
                          progress=progress)
    seconds = time.perf_counter() - start
    test = trainer.evaluate(x_test, y_test)
    if verbose:
        print(f"ResNet on digits: test accuracy {test['accuracy']:.4f} (loss "
              f"{test['loss']:.4f}) after {epochs} epochs, {seconds:.1f} s on the {backend} "
              f"backend; {model.num_params()} params")
    curves = history.save_curves(out, "resnet_digits", "ResNet on digits")
    if curves:
        print(f"wrote {curves}")
    return {"history": history, "test": test, "seconds": seconds, "curves": curves,
            "model": model}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=".", help="directory for the curves (default: .; "
                        "'' for none)")
    args = parser.parse_args()
    main(args.epochs, args.backend, out=args.out, threads=args.threads)
