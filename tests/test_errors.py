"""graphc/errors.py: the user's line every node and error names."""

import os

import graphc as gc
from graphc import errors


def test_a_node_built_in_exec_code_names_its_line_without_asking_the_file_system(monkeypatch):
    """Code run by exec or typed in a notebook has a pseudo file name ("<string>",
    "<ipython-input-...>"), never inside the package (whatever the cwd): it is answered
    without os.path.abspath, which ran for every frame of every node (a deep model's
    optimizer builds ~15k nodes, each walking ~12 frames: ~10% of its time)."""
    calls = []
    real = os.path.abspath
    monkeypatch.setattr(os.path, "abspath", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(errors, "_OUTSIDE", {})
    namespace = {"gc": gc}
    exec(compile("x = gc.input('x', (3,))\nnodes = [gc.exp(x * k) for k in range(50)]",
                 "<notebook cell>", "exec"), namespace)
    assert all(n.origin == "<notebook cell>:2" for n in namespace["nodes"])
    assert "<notebook cell>" not in calls
