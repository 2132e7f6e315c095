"""A LeNet training step compiled on the NumPy backend, shared by the explorer tests."""

import graphc as gc
from tests.passes.models import lenet, momentum


def lenet_step(name: str = "lenet_step"):
    """(compiled step, its arguments), called once (so it can be profiled)."""
    inputs, loss, updates, arrays = lenet(momentum)
    step = gc.compile(inputs, loss, updates=updates, backend="numpy", name=name)
    step(*arrays)
    return step, arrays
