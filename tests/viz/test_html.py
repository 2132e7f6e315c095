"""The explorer page: one self-contained file, from gc.viz.write and in notebooks."""

import json
import re

import pytest

import graphc as gc
from graphc.viz.html import asset, explorer, page
from tests.viz.common import lenet_step


def _data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="graphc-data">(.*?)</script>',
                      html, re.S)
    return json.loads(found.group(1))


def test_the_page_is_self_contained():
    step, _ = lenet_step()
    html = explorer(step)
    assert asset("dagre.min.js") in html and asset("explorer.js") in html
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=""", html)  # nothing fetched
    data = _data(html)
    assert data["title"] == "lenet_step"
    (function,) = data["functions"]
    assert function["initial"] == "optimized"
    assert [s["name"] for s in function["stages"]] == ["forward", "backward", "optimized",
                                                      "fused"]


def test_text_that_would_end_the_script_is_escaped():
    x = gc.input("</script><b>x", (2,))
    html = explorer(x * 2.0)
    assert html.count("</script>") == 3  # the data's, dagre's and the explorer's own
    assert _data(html)["functions"][0]["stages"][0]["nodes"][0]["name"] == "</script><b>x"


def test_write_html_of_a_function_with_a_profile_and_of_graph_values(tmp_path):
    step, arrays = lenet_step()
    profile = step.profile(*arrays, calls=1)
    path = gc.viz.write(step, tmp_path / "step.html", profiles={0: profile})
    optimized = _data(path.read_text())["functions"][0]["stages"][2]
    assert sum("ms" in n for n in optimized["nodes"]) == len(profile.kernels)
    x = gc.input("x", (3,))
    out = gc.viz.write([gc.exp(x), gc.sum(x)], tmp_path / "graph.htm")
    (stage,) = _data(out.read_text())["functions"][0]["stages"]
    assert stage["name"] == "graph" and len(stage["nodes"]) == 3


def test_write_refuses_dot_text_as_html(tmp_path):
    with pytest.raises(TypeError, match="draws graph values or compiled functions, not DOT"):
        gc.viz.write("digraph {}", tmp_path / "x.html")
    with pytest.raises(TypeError, match="expected compiled functions or graph values"):
        explorer([1, 2])
    with pytest.raises(ValueError, match="nothing to draw"):
        page([])


def test_nodes_and_functions_show_themselves_in_notebooks(monkeypatch, tmp_path):
    x = gc.input("x", (2,))
    html = (x * 2.0)._repr_html_()
    assert html.startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;') and "dagre" in html
    step = gc.compile([x], x * 2.0, backend="numpy", name="double")
    assert "&quot;double&quot;" in step._repr_html_()
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz: no SVG, the HTML is shown
    assert (x * 2.0)._repr_svg_() is None and step._repr_svg_() is None


def test_with_graphviz_small_graphs_give_svg_and_big_ones_none(monkeypatch, tmp_path):
    """Jupyter computes the SVG beside the HTML it shows: only small graphs get one."""
    from graphc.viz import notebook
    from tests.test_cli import fake_dot

    monkeypatch.setenv("PATH", fake_dot(tmp_path / "bin"))
    x = gc.input("x", (2,))
    assert gc.exp(x)._repr_svg_().startswith("FAKE-DOT -Tsvg\ndigraph")
    step = gc.compile([x], gc.exp(x), backend="numpy")
    assert step._repr_svg_().startswith("FAKE-DOT -Tsvg")
    monkeypatch.setattr(notebook, "SVG_MAX_NODES", 1)
    assert gc.exp(x)._repr_svg_() is None and step._repr_svg_() is None
