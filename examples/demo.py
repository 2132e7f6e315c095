"""The main demo: build a small classifier, train it a few steps, print, and draw its graphs.

    python examples/demo.py [--backend llvm|numpy] [--out DIR]
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

import graphc as gc


def main(out_dir: str = ".", backend: str = "llvm") -> dict:
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (3, 2)).astype(np.float32)
    labels = rng.integers(0, 3, 300).astype(np.int32)
    points = (centers[labels] + rng.normal(0, 1, (300, 2))).astype(np.float32)

    x = gc.input("x", ("N", 2))
    y = gc.input("y", ("N",), dtype="int32")
    W1 = gc.param("W1", rng.normal(0, 0.5, (2, 16)).astype(np.float32))
    b1 = gc.param("b1", np.zeros(16, np.float32))
    W2 = gc.param("W2", rng.normal(0, 0.5, (16, 3)).astype(np.float32))
    b2 = gc.param("b2", np.zeros(3, np.float32))
    logits = gc.relu(x @ W1 + b1) @ W2 + b2
    loss = gc.softmax_cross_entropy(logits, y)
    params = [W1, b1, W2, b2]
    grads = gc.grad(loss, params)
    step = gc.compile([x, y], [loss], updates={p: p - 0.1 * g for p, g in zip(params, grads)},
                      backend=backend, name="train_step")
    predict = gc.compile([x], gc.argmax(logits, axis=1), backend=backend, name="predict")

    losses = []
    for epoch in range(200):
        (value,) = step(points, labels)
        losses.append(float(value))
        if epoch % 50 == 0 or epoch == 199:
            print(f"step {epoch:3d}  loss {float(value):.4f}")
    accuracy = float(np.mean(predict(points) == labels))
    print(f"training accuracy {accuracy:.3f}")

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [gc.viz.write(loss, out / "demo_forward.dot", name="forward"),
               gc.viz.write(step, out / "demo_train_step.dot")]
    print("wrote " + " and ".join(str(path) for path in written))
    return {"losses": losses, "accuracy": accuracy, "written": written}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    parser.add_argument("--out", default=".", help="directory for the drawings (default: .)")
    args = parser.parse_args()
    main(args.out, args.backend)
