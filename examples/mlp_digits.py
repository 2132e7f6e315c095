"""An MLP on scikit-learn's 8x8 digits: standardized pixels, 64-128-10 with dropout, Adam.

Trains on 80% of the 1797 digits and reports accuracy on the held-out 20%.

    python examples/mlp_digits.py [--epochs 30] [--backend llvm|numpy] [--out DIR]

Writes the loss and accuracy curves to DIR/mlp_digits_curves.png (needs matplotlib).
"""

from __future__ import annotations

import argparse
import time

import graphc as gc
from graphc import nn


def main(epochs: int = 30, backend: str = "llvm", progress: bool | None = None,
         verbose: bool = True, out: str | None = None) -> dict:
    images, labels = gc.data.load_digits()
    x = images.reshape(len(images), -1)
    x_train, x_test, y_train, y_test = gc.data.train_test_split(x, labels, test_size=0.2, seed=0)
    scale = gc.data.Standardize().fit(x_train)  # fitted on training data only
    x_train, x_test = scale.transform(x_train), scale.transform(x_test)

    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
    optimizer = gc.optim.Adam(model.params(), lr=1e-3)
    trainer = gc.train.Trainer(model, optimizer, backend=backend)
    start = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=32,
                          validation=(x_test, y_test), progress=progress)
    seconds = time.perf_counter() - start
    test = trainer.evaluate(x_test, y_test)
    if verbose:
        print(f"MLP on digits: test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f}) "
              f"after {epochs} epochs, {seconds:.1f} s on the {backend} backend")
    curves = history.save_curves(out, "mlp_digits", "MLP on digits")
    if curves:
        print(f"wrote {curves}")
    return {"history": history, "test": test, "seconds": seconds, "curves": curves}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    parser.add_argument("--out", default=".", help="directory for the curves (default: .; "
                        "'' for none)")
    args = parser.parse_args()
    main(args.epochs, args.backend, out=args.out)
