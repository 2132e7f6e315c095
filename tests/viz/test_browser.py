"""The explorer in a real headless browser (Debian's Chromium driven by Playwright): it
loads without console errors, draws every node, folds a kernel, finds a param, shows a
node's facts on hover, colours kernels by time, and lays out a Transformer's step quickly.

CI installs Chromium and Playwright (.ci/run), and there a missing browser fails the test;
elsewhere it is skipped. GRAPHC_CHROMIUM names another Chromium binary."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

import graphc as gc
from tests.viz.common import lenet_step

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(what: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed: .ci/run installs it for the browser tests")
    pytest.skip(f"{what} is not installed (pip install playwright; apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright")
    chromium = os.environ.get("GRAPHC_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if chromium is None:
        _unavailable("Chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """(compiled LeNet step, its page's path, the page's data)."""
    step, arrays = lenet_step()
    path = tmp_path_factory.mktemp("explorer") / "lenet.html"
    gc.viz.write(step, path, profiles={0: step.profile(*arrays, calls=1)})
    found = re.search(r'id="graphc-data">(.*?)</script>', path.read_text(), re.S)
    return step, path, json.loads(found.group(1))


class Page:
    """A browser page on an explorer file, collecting console errors."""

    def __init__(self, browser, path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-ready]")

    def rendered(self, action) -> None:
        """Do `action` and wait for the drawing it causes."""
        before = int(self.page.get_attribute("body", "data-ready"))
        action()
        self.page.wait_for_function(f"Number(document.body.dataset.ready) > {before}")

    def stage(self, name: str) -> None:
        self.rendered(lambda: self.page.select_option("#stage", label=name))

    def drawn(self) -> set[int]:
        return {int(v) for v in self.page.eval_on_selector_all(
            "#scene g.node[data-node]", "els => els.map(e => e.dataset.node)")}


@pytest.fixture
def page(browser, lenet):
    page = Page(browser, lenet[1])
    yield page
    assert page.errors == []
    page.page.close()


def test_every_node_of_every_stage_is_drawn(page, lenet):
    _, _, data = lenet
    stages = data["functions"][0]["stages"]
    assert page.page.input_value("#stage") == "2"  # the optimized stage first
    for k in (2, 0, 1, 3):
        stage = stages[k]
        if k != 2:
            page.stage(stage["name"])
        assert page.drawn() == set(range(len(stage["nodes"]))), stage["name"]
        edges = page.page.locator("#scene path.edge").count()
        assert edges == len({(a, b) for a, b, _ in stage["edges"]})


def test_folding_a_kernel_hides_its_nodes_and_unfolding_shows_them(page, lenet):
    _, _, data = lenet
    fused = next(s for s in data["functions"][0]["stages"] if s["name"] == "fused")
    k, group = next((k, g) for k, g in enumerate(fused["groups"]) if len(g["nodes"]) > 1)
    page.stage("fused")
    page.rendered(lambda: page.page.click(f'#groups button[data-group="{k}"]'))
    drawn = page.drawn()
    assert not drawn & set(group["nodes"]) and len(drawn) == len(fused["nodes"]) - len(
        group["nodes"])
    assert page.page.locator(f"#group-{k}").count() == 1
    assert page.page.text_content(f"#group-{k}").startswith("▸ " + group["title"])
    page.rendered(lambda: page.page.click(f"#group-{k}"))
    assert set(group["nodes"]) <= page.drawn()
    assert page.page.locator(f"#group-{k}").count() == 0


def test_the_gradient_subgraph_folds_into_one_box(page, lenet):
    _, _, data = lenet
    backward = next(s for s in data["functions"][0]["stages"] if s["name"] == "backward")
    page.stage("backward")
    page.rendered(lambda: page.page.click("#collapse-all"))
    assert page.page.locator("#group-0.kind-gradient").count() == 1
    assert len(page.drawn()) == len(backward["nodes"]) - len(backward["groups"][0]["nodes"])
    page.rendered(lambda: page.page.click("#expand-all"))
    assert len(page.drawn()) == len(backward["nodes"])


def test_search_finds_a_param(page, lenet):
    _, _, data = lenet
    nodes = data["functions"][0]["stages"][2]["nodes"]
    c1w = next(k for k, n in enumerate(nodes) if n.get("name") == "c1w")
    velocity = next(k for k, n in enumerate(nodes) if n.get("name") == "c1w.v")
    page.page.fill("#search", "c1w")
    matches = page.page.eval_on_selector_all("#scene .node.match",
                                             "els => els.map(e => Number(e.dataset.node))")
    assert sorted(matches) == sorted([c1w, velocity])
    assert page.page.text_content("#status") == "2 matches"
    page.page.fill("#search", "conv2d_grad_weight")
    assert page.page.text_content("#status") == "2 matches"
    page.page.fill("#search", "")
    assert page.page.locator("#scene .node.match").count() == 0


def test_hover_shows_shape_dtype_source_line_and_time(page, lenet):
    _, _, data = lenet
    nodes = data["functions"][0]["stages"][2]["nodes"]
    k, node = next((k, n) for k, n in enumerate(nodes) if n["op"] == "fused_conv2d")
    page.page.hover(f"#node-{k}")
    tip = page.page.text_content("#tooltip")
    assert f"shape: {node['shape']}" in tip and "dtype: float32" in tip
    assert f"built at: {node['origin']}" in tip and "models.py:" in tip
    assert re.search(r"time: \d+\.\d{4} ms per call", tip)
    fill = page.page.eval_on_selector(f"#node-{k} rect", "r => r.style.fill")
    assert fill.startswith("rgb(")  # coloured by its time


def test_a_transformer_step_lays_out_in_about_a_second(browser, tmp_path):
    """The examples' Transformer (two encoder layers): its optimized training step has
    about 550 nodes and 1,100 edges."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "transformer_reverse.py"
    spec = importlib.util.spec_from_file_location("transformer_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    gc.nn.manual_seed(0)
    model = example.Reverser()
    trainer = gc.train.Trainer(model, gc.optim.AdamW(model.params()), backend="numpy")
    trainer.compile(*example.make_data(8, 0))
    page = Page(browser, gc.viz.write(trainer.step_fn, tmp_path / "transformer.html"))
    nodes = len(trainer.step_fn.program.graph.nodes)
    assert nodes > 400 and len(page.drawn()) == nodes
    seconds = page.page.evaluate("window.graphcLayoutMs") / 1e3
    assert seconds < 5.0, seconds  # about 1 s on an idle 2-core machine; CI may be busy
    assert page.errors == []
