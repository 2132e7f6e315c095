"""Linear regression: find b and w of y = b + w x by gradient descent on synthetic data.

The whole step — prediction, mean squared error, gradients, the SGD update of b and w —
is one compiled function. Prints the loss curve and the learned b and w next to the true
values and the least-squares solution.

    python examples/linear_regression.py [--steps 100] [--backend llvm|numpy]
"""

from __future__ import annotations

import argparse

import numpy as np

import graphc as gc

TRUE_B, TRUE_W = 1.5, -2.0


def make_data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x uniform in [-1, 1], y = b + w x + noise (std 0.1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    y = TRUE_B + TRUE_W * x + rng.normal(0, 0.1, n)
    return x.astype(np.float32), y.astype(np.float32)


def main(steps: int = 100, lr: float = 0.1, backend: str = "llvm", verbose: bool = True) -> dict:
    x, y = make_data()
    xs, ys = gc.input("x", ("N",)), gc.input("y", ("N",))
    b = gc.param("b", np.float32(0.0))
    w = gc.param("w", np.float32(0.0))
    loss = gc.mse_loss(b + w * xs, ys)
    optimizer = gc.optim.SGD([b, w], lr=lr)
    step = gc.compile([xs, ys], loss, updates=optimizer.updates(loss), backend=backend)

    losses = [float(step(x, y)) for _ in range(steps)]  # full-batch gradient descent
    design = np.stack([np.ones_like(x), x], 1).astype(np.float64)
    (ls_b, ls_w), *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    result = {"b": float(b.value), "w": float(w.value), "losses": losses,
              "least_squares": (float(ls_b), float(ls_w))}
    if verbose:
        print("step   loss")
        for k in sorted({0, *range(0, steps, max(1, steps // 10)), steps - 1}):
            print(f"{k + 1:4d}   {losses[k]:.6f}  {'#' * int(40 * losses[k] / losses[0])}")
        print(f"learned        b = {result['b']:+.4f}   w = {result['w']:+.4f}")
        print(f"least squares  b = {ls_b:+.4f}   w = {ls_w:+.4f}")
        print(f"true           b = {TRUE_B:+.4f}   w = {TRUE_W:+.4f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    args = parser.parse_args()
    main(args.steps, args.lr, args.backend)
