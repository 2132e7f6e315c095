"""The native call (runtime/native.py): every kind of argument array reaches the kernels
at its own address."""

import numpy as np

import graphc as gc
from graphc.backends.llvm.runtime import native


def test_the_address_of_every_kind_of_array():
    """_address takes the fast buffer path where it can and array.ctypes.data elsewhere:
    the same number either way."""
    base = np.arange(12, dtype=np.float32)
    frozen = base.copy()
    frozen.flags.writeable = False
    arrays = [base, base[3:], base.reshape(3, 4)[1], frozen, np.empty(0, np.float32),
              np.zeros((2, 3), bool), np.ones(5, np.int64)]
    for array in arrays:
        assert native._address(array) == array.ctypes.data


def test_offset_read_only_and_empty_inputs_compute_what_numpy_does():
    x = gc.input("x", ("N", 4))
    f = gc.compile([x], gc.sum(x * 2.0, axis=1), backend="llvm")
    data = np.arange(40, dtype=np.float32).reshape(10, 4)
    frozen = data.copy()
    frozen.flags.writeable = False
    for argument in (data[3:], frozen, data[:0]):
        np.testing.assert_array_equal(f(argument), (argument * 2.0).sum(axis=1))
