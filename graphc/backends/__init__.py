"""Backends turn a Program into a Runner; they share one interface (see base.py)."""

from __future__ import annotations

from graphc.backends.base import Backend, Runner  # noqa: F401


def get_backend(name: str) -> Backend:
    """The backend called `name` ("numpy" or "llvm")."""
    if name == "numpy":
        from graphc.backends.numpy import NumpyBackend  # a backend is imported when asked for
        return NumpyBackend()
    if name == "llvm":
        try:
            from graphc.backends.llvm import LLVMBackend  # llvmlite: only when asked for
        except ImportError as exc:
            raise ValueError(f"the llvm backend is not available: {exc}") from exc
        return LLVMBackend()
    raise ValueError(f"unknown backend {name!r} (choose 'llvm' or 'numpy')")
