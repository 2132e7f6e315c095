"""A small Transformer encoder that learns to reverse sequences of digits.

Tokens and positions are embedded, two pre-norm encoder layers (multi-head
self-attention, layer norm, a GELU MLP) mix them, and a linear head predicts at each
position the digit that belongs there in the reversed sequence. Reversing needs each
position to attend to its mirror position, which the model must learn from the position
embeddings. Reports the token accuracy on held-out sequences.

    python examples/transformer_reverse.py [--epochs 4] [--backend llvm|numpy] [--out DIR]

Writes the loss and accuracy curves to DIR/transformer_reverse_curves.png (needs
matplotlib).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import graphc as gc
from graphc import nn

LENGTH, VOCAB = 8, 10


class Reverser(nn.Module):
    """(batch, LENGTH) digit ids -> (batch, LENGTH, VOCAB) logits."""

    def __init__(self, d_model: int = 64, heads: int = 4, layers: int = 2, hidden: int = 128):
        self.tokens = nn.Embedding(VOCAB, d_model)
        self.positions = nn.Embedding(LENGTH, d_model)
        self.encoder = nn.ModuleList(nn.TransformerEncoderLayer(
            d_model, heads, hidden, dropout=0.0, activation="gelu", batch_first=True,
            norm_first=True) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, VOCAB, init="xavier")

    def forward(self, ids):
        where = gc.constant(np.arange(LENGTH, dtype=np.int32))
        h = self.tokens(ids) + self.positions(where)
        for layer in self.encoder:
            h = layer(h)
        return self.head(self.norm(h))


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    digits = np.random.default_rng(seed).integers(0, VOCAB, (n, LENGTH)).astype(np.int32)
    return digits, digits[:, ::-1].copy()


def main(epochs: int = 4, train_size: int = 8000, backend: str = "llvm",
         progress: bool | None = None, verbose: bool = True, out: str | None = None) -> dict:
    x_train, y_train = make_data(train_size, seed=0)
    x_test, y_test = make_data(1000, seed=1)
    nn.manual_seed(0)
    model = Reverser()
    optimizer = gc.optim.AdamW(model.params(), lr=3e-3, weight_decay=0.01)
    schedule = gc.optim.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=1e-4)
    trainer = gc.train.Trainer(model, optimizer, schedule=schedule, backend=backend)
    start = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=64,
                          validation=(x_test, y_test), progress=progress)
    seconds = time.perf_counter() - start
    test = trainer.evaluate(x_test, y_test)
    if verbose:
        sample = x_test[:1]
        predicted = trainer.predict(sample).argmax(-1)[0]
        print(f"input     {sample[0].tolist()}\npredicted {predicted.tolist()}")
        print(f"Transformer reversing {LENGTH} digits: held-out token accuracy "
              f"{test['accuracy']:.4f} (loss {test['loss']:.4f}) after {epochs} epochs, "
              f"{seconds:.1f} s on the {backend} backend")
    curves = history.save_curves(out, "transformer_reverse", "Transformer reversing digits")
    if curves:
        print(f"wrote {curves}")
    return {"history": history, "test": test, "seconds": seconds, "curves": curves}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    parser.add_argument("--out", default=".", help="directory for the curves (default: .; "
                        "'' for none)")
    args = parser.parse_args()
    main(args.epochs, args.train_size, args.backend, out=args.out)
