"""Reverse-mode differentiation as a graph-to-graph transform: gradients are more graph."""

from graphc.autodiff.reverse import grad  # noqa: F401
