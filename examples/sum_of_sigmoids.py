"""Fit a piecewise-linear curve with a sum of K sigmoids, and with a sum of K ReLUs.

f(x) = c + sum_k a_k act(w_k x + d_k) is a one-hidden-layer network (Linear -> act ->
Linear). More units give more steps (sigmoids) or kinks (ReLUs) to bend with, so the
final loss falls as K grows. Writes a PNG of the fits when matplotlib is installed.

    python examples/sum_of_sigmoids.py [--units 1 2 4 8 16] [--steps 1000] [--plot FILE]
"""

from __future__ import annotations

import argparse

import numpy as np

import graphc as gc
from graphc import nn

X_RANGE = (-3.0, 3.0)


KNOTS_X = (-3.0, -2.0, -1.0, 0.5, 1.5, 3.0)
KNOTS_Y = (0.0, 0.0, 1.0, 1.0, -0.5, 0.25)


def target(x: np.ndarray) -> np.ndarray:
    """A piecewise-linear curve: flat, a ramp up, a plateau, a steep fall, a ramp up."""
    return np.interp(x, KNOTS_X, KNOTS_Y)


def fit(units: int, activation: str, steps: int, backend: str, seed: int = 0):
    """Train one network; returns (loss per step, predict function)."""
    nn.manual_seed(seed)
    init = "xavier" if activation == "sigmoid" else "he"
    hidden = nn.Linear(1, units, init=init)
    # Put each unit's step (or kink) at its own place in the input range, evenly spread,
    # instead of all at x = 0 where zero biases put them: a better start for a 1-D curve.
    centers = np.linspace(*X_RANGE, units + 2)[1:-1]
    hidden.bias.value = (-hidden.weight.value[:, 0] * centers).astype(np.float32)
    output = nn.Linear(units, 1, init="xavier")
    output.weight.value = np.zeros((1, units), np.float32)  # start from f = 0: a calm start
    model = nn.Sequential(hidden, nn.Sigmoid() if activation == "sigmoid" else nn.ReLU(), output)
    x = gc.input("x", ("N", 1))
    y = gc.input("y", ("N", 1))
    loss = gc.mse_loss(model(x, training=True), y)
    optimizer = gc.optim.Adam(model.params(), lr=0.01)
    schedule = gc.optim.CosineAnnealingLR(optimizer, T_max=steps, eta_min=1e-4)
    step = gc.compile([x, y], loss, updates=optimizer.updates(loss), backend=backend)
    predict = gc.compile([x], model(x, training=False), backend=backend)
    xs = np.linspace(*X_RANGE, 400, dtype=np.float32)[:, None]
    ys = target(xs).astype(np.float32)
    losses = []
    for _ in range(steps):
        losses.append(float(step(xs, ys)))
        schedule.step()
    return losses, predict


def main(units=(1, 2, 4, 8, 16), steps: int = 1000, restarts: int = 3, backend: str = "llvm",
         plot: str | None = "sum_of_sigmoids.png", verbose: bool = True) -> dict:
    """Fit every width with each activation; keep the best of `restarts` seeded starts
    (gradient descent on these small networks can stall in a poor local minimum)."""
    results = {}
    for activation in ("sigmoid", "relu"):
        for k in units:
            runs = [fit(k, activation, steps, backend, seed) for seed in range(restarts)]
            losses, predict = min(runs, key=lambda run: run[0][-1])
            results[activation, k] = {"losses": losses, "predict": predict}
    if verbose:
        print(f"final mean squared error after {steps} steps (best of {restarts} starts)")
        print("units   " + "  ".join(f"{k:>8d}" for k in units))
        for activation in ("sigmoid", "relu"):
            finals = "  ".join(f"{results[activation, k]['losses'][-1]:8.5f}" for k in units)
            print(f"{activation:7s} {finals}")
    results["plot"] = _plot(results, units, plot) if plot else None
    if verbose and results["plot"]:
        print(f"wrote {results['plot']}")
    return results


def _plot(results: dict, units, path: str) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'graphc[plot]'): no plot written")
        return None
    xs = np.linspace(*X_RANGE, 400, dtype=np.float32)[:, None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, activation in zip(axes, ("sigmoid", "relu")):
        ax.plot(xs[:, 0], target(xs[:, 0]), "k", lw=3, alpha=0.3, label="target")
        for k in units:
            mse = results[activation, k]["losses"][-1]
            ax.plot(xs[:, 0], results[activation, k]["predict"](xs)[:, 0],
                    label=f"{k} units (mse {mse:.4f})")
        ax.set_title(f"sum of {activation}s")
        ax.set_xlabel("x")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    parser.add_argument("--plot", default="sum_of_sigmoids.png",
                        help="PNG to write (needs matplotlib); '' for none")
    args = parser.parse_args()
    main(tuple(args.units), args.steps, args.restarts, args.backend, args.plot or None)
