"""The backends a test can run on here: the reference always, LLVM when it imports."""

import graphc as gc


def available_backends() -> list[str]:
    names = ["numpy"]
    try:
        from graphc.backends import get_backend
        get_backend("llvm")
        names.append("llvm")
    except (ValueError, ImportError):
        pass
    return names


BACKENDS = available_backends()
__all__ = ["BACKENDS", "gc"]
