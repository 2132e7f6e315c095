"""Export the digits CNN of examples/cnn_digits.py as two C libraries, and the data:

- OUT/digits/        inference, a batch of 64 images (1 x 8 x 8, standardized) -> 10
                      logits each, with the weights trained here in Python;
- OUT/digits_train/  the whole training step (forward, loss, backward, Adam, dropout) on a
                      batch of 32, with the weights as they were before training: train.c
                      trains them from C;
- OUT/{train,test}_images.f32 and _labels.i32: the standardized images (float32) and the
                      labels (int32), raw little-endian.

    python examples/export_c/export_digits.py [--epochs 20] [--out out] [--target host]

then `make` builds main (classifies the test set) and train (trains from C): see README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import graphc as gc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/: the model
from cnn_digits import build_model  # noqa: E402

INFER_BATCH, TRAIN_BATCH = 64, 32


def main(epochs: int = 20, out: str = "out", target: str = "host", progress: bool = True,
         verbose: bool = True) -> dict:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    images, labels = gc.data.load_digits()
    images = images[:, None]  # (N, 1, 8, 8)
    x_train, x_test, y_train, y_test = gc.data.train_test_split(images, labels,
                                                                test_size=0.2, seed=0)
    normalize = gc.data.Standardize(per_feature=False).fit(x_train)
    x_train, x_test = normalize.transform(x_train), normalize.transform(x_test)
    for stem, array in (("train_images", x_train), ("test_images", x_test)):
        np.ascontiguousarray(array, "<f4").tofile(out_dir / f"{stem}.f32")
    for stem, array in (("train_labels", y_train), ("test_labels", y_test)):
        np.ascontiguousarray(array, "<i4").tofile(out_dir / f"{stem}.i32")

    gc.nn.manual_seed(0)
    model = build_model()
    optimizer = gc.optim.Adam(model.params(), lr=3e-3)
    trainer = gc.train.Trainer(model, optimizer,
                               schedule=gc.optim.CosineAnnealingLR(optimizer, T_max=epochs,
                                                                   eta_min=1e-5))
    trainer.compile(x_train, y_train)  # the step, evaluation and prediction functions
    # The training step as it starts: train.c trains these weights from C.
    step = gc.export(trainer.step_fn, out_dir / "digits_train", "digits_train", target=target,
                     dims={"N": TRAIN_BATCH})
    start = time.perf_counter()
    trainer.fit(x_train, y_train, epochs=epochs, batch_size=TRAIN_BATCH, progress=progress)
    seconds = time.perf_counter() - start
    accuracy = trainer.evaluate(x_test, y_test)["accuracy"]
    infer = gc.export(trainer.predict_fn, out_dir / "digits", "digits", target=target,
                      dims={"N": INFER_BATCH})
    timing = _python_timing(trainer, x_train, y_train)
    if verbose:
        print(f"trained {epochs} epochs in Python ({seconds:.1f} s): test accuracy "
              f"{accuracy:.4f}")
        for exported in (infer, step):
            sizes = ", ".join(f"{p.name} {p.stat().st_size:,} B" for p in exported.files.values())
            print(f"exported {exported.name}: {sizes}")
        print(f"Python call, 1 thread: inference {timing['infer_ms']:.3f} ms per batch of "
              f"{INFER_BATCH}, training step {timing['step_ms']:.3f} ms per batch of "
              f"{TRAIN_BATCH}")
    return {"accuracy": accuracy, "infer": infer, "step": step, **timing}


def _python_timing(trainer: gc.train.Trainer, x: np.ndarray, y: np.ndarray,
                   calls: int = 200) -> dict[str, float]:
    """Milliseconds per call of the Python functions at 1 thread, as the C programs run
    them (for the comparison main and train print; the params are restored after)."""
    source = trainer.predict_fn.source
    infer = gc.compile(source.inputs, source.outputs[0], threads=1)
    step_source = trainer.step_fn.source
    step = gc.compile(step_source.inputs, list(step_source.outputs),
                      updates=dict(step_source.updates), threads=1)
    saved = [(p, p.value.copy()) for p, _ in step_source.updates]  # every param it writes
    xb, yb = x[:INFER_BATCH], y[:TRAIN_BATCH]
    timing = {}
    for key, call, args in (("infer_ms", infer, (xb,)), ("step_ms", step, (x[:TRAIN_BATCH], yb))):
        call(*args)
        start = time.perf_counter()
        for _ in range(calls):
            call(*args)
        timing[key] = (time.perf_counter() - start) / calls * 1e3
    for param, value in saved:
        param.value[...] = value
    return timing


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default="out", help="the directory for the libraries and data")
    parser.add_argument("--target", default="host",
                        help="host (default), x86-64-v3, x86-64-v4, ... (gc.compile's targets)")
    args = parser.parse_args()
    main(args.epochs, args.out, args.target)
