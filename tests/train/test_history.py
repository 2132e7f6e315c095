"""History: per-epoch records, and plot() drawing the loss and accuracy curves."""

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from graphc.train import History
from tests.train.common import blobs, make

pytest.importorskip("matplotlib")  # the plot extra; the test extra installs it


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_a_trained_history_plots_loss_and_accuracy_side_by_side(tmp_path):
    x, y = blobs(n=60)
    history = make().fit(x, y, epochs=3, batch_size=16, validation=(x, y), progress=False)
    path = history.plot(tmp_path / "curves.png", title="blobs")
    assert path == tmp_path / "curves.png"
    width, height = _png_size(path)
    assert (width, height) == (1100, 400)  # two panels of 5.5 x 4 inches at 100 dpi


def test_a_history_without_accuracy_plots_one_panel(tmp_path):
    history = History([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0, "val_loss": 1.5}])
    assert _png_size(history.plot(tmp_path / "loss.png")) == (550, 400)


def test_the_suffix_picks_the_format(tmp_path):
    history = History([{"epoch": 1, "loss": 2.0, "accuracy": 0.5}], best_epoch=1)
    assert history.plot(tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    assert history.plot(tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


def test_plot_leaves_pyplot_alone(tmp_path):
    """No pyplot import (its global backend and figures are the caller's): in a fresh
    interpreter, where nothing else imported it."""
    code = ("import sys; from graphc.train import History; "
            f"History([{{'epoch': 1, 'loss': 1.0}}]).plot({str(tmp_path / 'c.png')!r}); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "False" and (tmp_path / "c.png").exists()


def test_an_empty_history_has_nothing_to_plot(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot, the history has no epochs yet"):
        History().plot(tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_without_matplotlib_plot_says_which_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install 'graphc\[plot\]'"):
        History([{"epoch": 1, "loss": 1.0}]).plot(tmp_path / "c.png")


def test_indexing_gives_one_metric_over_the_epochs():
    history = History([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0, "skipped": 3}])
    assert history["loss"] == [2.0, 1.0] and history["skipped"] == [None, 3]
    assert len(history) == 2


def test_save_curves_makes_the_directory_and_names_the_file(tmp_path):
    history = History([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0}])
    path = history.save_curves(tmp_path / "new" / "dir", "run", title="a run")
    assert path == tmp_path / "new" / "dir" / "run_curves.png" and _png_size(path)
    assert history.save_curves("", "run") is None and history.save_curves(None, "run") is None


def test_save_curves_without_matplotlib_warns_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    with pytest.warns(UserWarning, match=r"graphc\[plot\].*no curves written"):
        assert History([{"epoch": 1, "loss": 1.0}]).save_curves(tmp_path, "run") is None
    assert not list(tmp_path.iterdir())
