"""A training run's per-epoch records, and a picture of them: loss curves, and accuracy
curves when accuracy was measured (matplotlib, the `plot` extra)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graphc.train.trainer import Trainer


@dataclass
class History:
    """Per-epoch records: loss, accuracy (when measured), val_loss, val_accuracy, lr,
    seconds, and skipped (batches left out for a non-finite loss, when there were some)."""

    epochs: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    trainer: Trainer | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> list:
        """One metric over the epochs, e.g. history["val_accuracy"]."""
        return [record.get(key) for record in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """Draw the loss (and validation loss) per epoch, and beside it the accuracy when
        it was measured, into `path` (its suffix picks the format: .png, .svg, .pdf, ...);
        returns the path. Needs matplotlib (pip install 'graphc[plot]'); uses no pyplot
        state, so it changes no backend or open figure of the caller's."""
        if not self.epochs:
            raise ValueError("History.plot: nothing to plot, the history has no epochs yet")
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("History.plot needs matplotlib: pip install 'graphc[plot]' (or "
                              "pip install matplotlib)") from None
        panels = [("loss", "loss")]
        if any(record.get("accuracy") is not None for record in self.epochs):
            panels.append(("accuracy", "accuracy"))
        fig = Figure(figsize=(5.5 * len(panels), 4), layout="constrained")
        epochs = self["epoch"]
        for k, (metric, label) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), k + 1)
            for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
                values = self[key]
                points = [(e, v) for e, v in zip(epochs, values) if v is not None]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, style, markersize=3, label=key.replace("_", " "))
            if self.best_epoch is not None:
                ax.axvline(self.best_epoch, color="0.6", linestyle=":", label="best epoch")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        path = Path(path)
        fig.savefig(path, dpi=100)
        return path

    def save_curves(self, directory: str | Path | None, name: str,
                    title: str | None = None) -> Path | None:
        """plot() into DIRECTORY/NAME_curves.png (the directory made if missing) for a
        script whose curves are optional: None for no directory, and None with a warning
        where matplotlib is missing, so a finished training run never fails for them."""
        if not directory:
            return None
        Path(directory).mkdir(parents=True, exist_ok=True)
        try:
            return self.plot(Path(directory) / f"{name}_curves.png", title=title)
        except ImportError as exc:
            warnings.warn(f"{exc}: no curves written", stacklevel=2)
            return None
