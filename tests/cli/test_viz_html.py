"""`graphc viz SCRIPT --html`: one explorer page of every function the script compiled."""

from __future__ import annotations

import json
import re

import pytest

from graphc.cli import main
from tests.cli.test_profile import script


def _data(path) -> dict:
    found = re.search(r'id="graphc-data">(.*?)</script>', path.read_text(), re.S)
    return json.loads(found.group(1))


def test_html_draws_every_function_in_one_page(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["viz", str(script(tmp_path)), "--html"]) == 0
    path = tmp_path / "model.html"
    assert capsys.readouterr().out.strip() == str(path)
    data = _data(path)
    assert data["title"] == "model.py"
    assert [f["name"] for f in data["functions"]] == ["tiny_step", "predict"]
    assert all(f["stages"] for f in data["functions"])
    assert not list(tmp_path.glob("*.dot"))


def test_html_with_profile_colours_the_kernels_of_functions_that_ran(tmp_path, capsys):
    out = tmp_path / "pages" / "graphs.html"
    assert main(["viz", str(script(tmp_path)), "--html", "--profile", "-o", str(out)]) == 0
    assert "function 1 (predict) was never called: not profiled" in capsys.readouterr().err
    step, predict = _data(out)["functions"]
    optimized = next(s for s in step["stages"] if s["name"] == "optimized")
    assert any("ms" in n for n in optimized["nodes"])
    assert not any("ms" in n for s in predict["stages"] for n in s["nodes"])


@pytest.mark.parametrize("argv, message", [
    (["--html", "-o", "x.svg"], "with --html, the file is a .html file"),
    (["--profile"], "--profile colours the HTML explorer: use it with --html"),
    (["--html", "--stage", "forward"], "--html draws every stage"),
])
def test_html_option_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["viz", str(script(tmp_path)), *argv]) == 2
    assert message in capsys.readouterr().err
