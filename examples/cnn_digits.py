"""A CNN on scikit-learn's 8x8 digits: conv-relu-pool twice, then fully connected.

Preprocessing is fitted on the training images (standardization with one global mean and
std, which keeps the images' structure); training batches are augmented (random shifts by
a pixel, small rotations, noise) before that preprocessing; dropout regularizes the
classifier; the learning rate follows a cosine schedule. Reports accuracy on a held-out
20% of the digits, and can write drawings of the compiled training step's graph.

    python examples/cnn_digits.py [--epochs 40] [--backend llvm|numpy] [--graphs DIR] [--out DIR]

Writes the loss and accuracy curves to DIR/cnn_digits_curves.png (needs matplotlib).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import graphc as gc
from graphc import nn


def build_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 4 x 4
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 2 x 2
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(32 * 2 * 2, 10),
    )


def main(epochs: int = 40, backend: str = "llvm", graphs: str | None = None,
         progress: bool | None = None, verbose: bool = True, out: str | None = None) -> dict:
    images, labels = gc.data.load_digits()
    images = images[:, None]                                         # (N, 1, 8, 8)
    x_train, x_test, y_train, y_test = gc.data.train_test_split(images, labels,
                                                                test_size=0.2, seed=0)
    normalize = gc.data.Standardize(per_feature=False).fit(x_train)
    augment = gc.data.Compose(gc.data.RandomShift(1), gc.data.RandomRotation(10),
                              gc.data.GaussianNoise(0.02))

    def augment_then_normalize(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return normalize.transform(np.clip(augment(batch, rng), 0.0, 1.0))

    nn.manual_seed(0)
    model = build_model()
    optimizer = gc.optim.Adam(model.params(), lr=3e-3)
    schedule = gc.optim.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=1e-5)
    trainer = gc.train.Trainer(model, optimizer, schedule=schedule, backend=backend)
    x_test = normalize.transform(x_test)
    start = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=32,
                          validation=(x_test, y_test), transform=augment_then_normalize,
                          progress=progress)
    seconds = time.perf_counter() - start
    test = trainer.evaluate(x_test, y_test)
    if verbose:
        print(f"CNN on digits: test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f}) "
              f"after {epochs} epochs, {seconds:.1f} s on the {backend} backend")
    if graphs:
        for path in draw(trainer, Path(graphs)):
            print(f"wrote {path}")
    curves = history.save_curves(out, "cnn_digits", "CNN on digits")
    if curves:
        print(f"wrote {curves}")
    return {"history": history, "test": test, "seconds": seconds, "curves": curves}


def draw(trainer: gc.train.Trainer, directory: Path) -> list[Path]:
    """Drawings of the compiled training step: the forward graph, the forward and
    backward graph with the optimizer's updates, and the optimized graph that runs.
    DOT text always; SVG too where Graphviz's `dot` is installed."""
    from graphc import viz

    directory.mkdir(parents=True, exist_ok=True)
    source, compiled = trainer.step_fn.source, trainer.step_fn.program
    stages = {"forward": viz.to_dot(list(source.outputs), name="forward"),
              "backward": viz.to_dot(list(source.outputs), name="backward",
                                     updates=source.updates),
              "optimized": viz.to_dot(list(compiled.outputs), name="optimized",
                                      updates=compiled.updates)}
    written = []
    for stage, text in stages.items():
        suffixes = (".dot", ".svg") if viz.dot_program() else (".dot",)
        for suffix in suffixes:
            written.append(viz.write(text, directory / f"cnn_train_step.{stage}{suffix}"))
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    parser.add_argument("--graphs", help="directory for drawings of the training step's graph")
    parser.add_argument("--out", default=".", help="directory for the curves (default: .; "
                        "'' for none)")
    args = parser.parse_args()
    main(args.epochs, args.backend, args.graphs, out=args.out)
