"""The graph IR: hash-consed SSA nodes and graphs of them."""

from graphc.ir.graph import Graph, topological_order  # noqa: F401
from graphc.ir.node import Node  # noqa: F401
