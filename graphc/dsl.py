"""The graph-building functions of the public API, gathered from the op modules that
define them (graphc/ops): leaves, elementwise ops, reductions, linear algebra, shapes and
indexing, convolution and pooling, and the composite neural-network functions. Each
function's rules live with its op."""

from graphc.ir.node import Node
from graphc.ops import operators as _operators  # noqa: F401 (registers every op)

Value = Node
