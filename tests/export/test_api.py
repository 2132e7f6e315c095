"""gc.export is the package graphc.export, callable as the function, whichever is imported
first (a submodule import binds the package to graphc.export)."""

from __future__ import annotations

import subprocess
import sys

import pytest

ORDERS = {
    "public name first": "import graphc as gc; f = gc.export; import graphc.export.weights",
    "submodule first": "import graphc.export.api; import graphc as gc; f = gc.export",
    "from import": "from graphc.export import export as f; import graphc as gc",
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_gc_export_is_callable_whatever_was_imported_first(order):
    check = (ORDERS[order] + "\nimport graphc.export as package\n"
             "assert callable(gc.export) and callable(f)\n"
             "assert gc.export.read_weights is package.read_weights\n"
             "assert 'export' in dir(gc)\n"
             "try:\n    gc.export(1, 'unused')\nexcept TypeError as e:\n"
             "    assert 'expected a function made by gc.compile' in str(e)\n"
             "else:\n    raise AssertionError('no TypeError')\n")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
