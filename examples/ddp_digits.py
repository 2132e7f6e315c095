"""The digits CNN of cnn_digits.py trained data-parallel on several processes:

    mpiexec -n 2 python examples/ddp_digits.py [--epochs 40] [--checkpoint ddp.npz]
    python examples/ddp_digits.py            # the same script alone: one process

Every process builds the same model (rank 0's params are broadcast at the start), goes
through the same shuffled global batches of 32 and trains on its slice of each; the
gradients are averaged with MPI all-reduce, so every process takes the same step as one
process on the whole batch would. Rank 0 shows the progress bar, writes the checkpoint
after every epoch and prints the result; `--resume` continues from the checkpoint.
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


def main(epochs: int = 40, backend: str = "llvm", checkpoint: str | None = None,
         resume: bool = False, progress: bool = True, verbose: bool = True) -> dict:
    world = gc.distributed.init()
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
    ddp = gc.distributed.DataParallel(trainer, world)
    if resume and checkpoint and Path(checkpoint).exists():
        ddp.load(checkpoint)  # read by rank 0, its state sent to every process
    x_test = normalize.transform(x_test)
    start = time.perf_counter()
    history = ddp.fit(x_train, y_train, epochs=max(0, epochs - trainer.epoch), batch_size=32,
                      validation=(x_test, y_test), transform=augment_then_normalize,
                      checkpoint_path=checkpoint, progress=progress)
    seconds = time.perf_counter() - start
    test = ddp.evaluate(x_test, y_test)
    if verbose and world.is_main:
        print(f"CNN on digits, {world.size} process(es): test accuracy {test['accuracy']:.4f} "
              f"(loss {test['loss']:.4f}) after {trainer.epoch} epochs, {seconds:.1f} s on the "
              f"{backend} backend; all-reduce waits {world.communication_seconds:.2f} s")
    return {"history": history, "test": test, "seconds": seconds, "world": world}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    parser.add_argument("--checkpoint", help="write the training state here after each epoch")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args()
    main(args.epochs, args.backend, args.checkpoint, args.resume, args.progress)
