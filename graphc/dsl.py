"""The graph-building functions of the public API: the builders each op module names in
its `__all__` (graphc/ops: leaves, elementwise ops, reductions, linear algebra, shapes and
indexing, convolution and pooling, the composite neural-network functions), gathered
here. Each function's rules live with its op."""

from graphc import viz as _viz  # noqa: F401  (graph values draw themselves in notebooks)
from graphc.ir.node import Node
from graphc.ops import MODULES

for _module in MODULES:
    for _name in getattr(_module, "__all__", ()):
        globals()[_name] = getattr(_module, _name)

Value = Node
