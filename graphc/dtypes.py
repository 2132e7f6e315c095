"""The dtypes graphc supports and NumPy's promotion rules, with Python scalars weak."""

from __future__ import annotations

import functools

import numpy as np

SUPPORTED = tuple(np.dtype(d) for d in ("bool", "uint8", "int8", "int16", "int32", "int64",
                                         "float32", "float64"))
FLOATS = (np.dtype("float32"), np.dtype("float64"))
INTS = tuple(np.dtype(d) for d in ("uint8", "int8", "int16", "int32", "int64"))
UNSIGNED = (np.dtype("uint8"),)  # images arrive as uint8; wider unsigned types are not had
BOOL = np.dtype("bool")
FLOAT32 = np.dtype("float32")
FLOAT64 = np.dtype("float64")
INT64 = np.dtype("int64")


def as_dtype(dtype) -> np.dtype:
    """Normalize a dtype spec; raise TypeError for dtypes graphc does not support."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"unknown dtype {dtype!r}") from exc
    if dt not in SUPPORTED and dt.newbyteorder("=") in SUPPORTED:
        raise TypeError(f"only native byte order is supported, got {byte_order_words(dt)}")
    if dt not in SUPPORTED:
        names = ", ".join(d.name for d in SUPPORTED)
        raise TypeError(f"dtype {dt.name} is not supported (supported: {names})")
    return dt


def byte_order_words(dtype: np.dtype) -> str:
    """A non-native dtype named with its byte order, and how to convert an array of it."""
    endian = "big" if dtype.byteorder == ">" else "little"
    native = dtype.newbyteorder("=")
    return (f"{endian}-endian {dtype.name} ('{dtype.str}'); convert with "
            f".astype('{native.str}') or np.ascontiguousarray(x, dtype='{native.name}')")


def is_float(dtype: np.dtype) -> bool:
    return dtype in FLOATS


def is_int(dtype: np.dtype) -> bool:
    return dtype in INTS


def is_unsigned(dtype: np.dtype) -> bool:
    """Whether an int dtype is unsigned (its comparisons, divisions, shifts and widening
    conversions are the unsigned ones)."""
    return np.dtype(dtype) in UNSIGNED


def promote(*dtypes: np.dtype) -> np.dtype:
    """NumPy's result dtype of combining values of these dtypes."""
    if all(isinstance(d, np.dtype) for d in dtypes):
        return _promote(dtypes)
    return as_dtype(np.result_type(*dtypes))


@functools.lru_cache(maxsize=1024)
def _promote(dtypes: tuple[np.dtype, ...]) -> np.dtype:
    """promote() of dtypes (not scalars: 1, 1.0 and True are one dict key), cached: every
    elementwise node's inference asks it."""
    return as_dtype(np.result_type(*dtypes))


def float_result(dtype: np.dtype) -> np.dtype:
    """The dtype of a float-valued function (exp, log, ...) of a value of this dtype."""
    return dtype if is_float(dtype) else FLOAT64


def weak_scalar_dtype(scalar, other: np.dtype) -> np.dtype:
    """The dtype a Python scalar takes next to a value of dtype `other` (NEP 50). A Python
    int out of the range of the int dtype it takes raises OverflowError, as in NumPy 2
    (`uint8_image + 300`, `uint8_image + (-1)`)."""
    dtype = as_dtype(np.result_type(other, scalar))
    if isinstance(scalar, int) and not isinstance(scalar, bool) and is_int(dtype):
        info = np.iinfo(dtype)
        if not info.min <= scalar <= info.max:
            raise OverflowError(f"the Python integer {scalar} is out of bounds for "
                                f"{dtype.name} ({info.min}..{info.max}), as in NumPy; make "
                                "it an array of a wider dtype, or cast the value first")
    return dtype


def scalar_text(value) -> str:
    """One number as text in the shortest form that reads back as the same value of its
    own dtype: a float32 0.9 is "0.9" (not 0.899999976158142, its float64 value), 1e-08
    stays short, and ints and bools print as themselves."""
    scalar = np.asarray(value).reshape(-1)[0]
    if isinstance(scalar, np.floating):
        return np.format_float_positional(scalar, unique=True, trim="0") \
            if scalar == 0 or 1e-4 <= abs(scalar) < 1e16 or not np.isfinite(scalar) \
            else np.format_float_scientific(scalar, unique=True, trim="-")
    return str(scalar.item())
