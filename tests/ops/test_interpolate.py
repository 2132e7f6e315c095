"""interpolate against PyTorch's torch.nn.functional.interpolate: every mode, sizes and
scale factors (fractional ones too), align_corners, float32 and float64, values and
gradients; and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F

import graphc as gc
from tests.ops.oracle import agree_with_torch

RNG = np.random.default_rng(4)


@pytest.mark.parametrize("shape,options", [
    ((1, 2, 3, 4), dict(size=(5, 7))),
    ((1, 2, 3, 4), dict(scale_factor=1.7)),
    ((2, 1, 3, 4), dict(scale_factor=2)),
    ((1, 1, 5, 4), dict(size=(3, 9), mode="nearest-exact")),
    ((1, 1, 2, 3, 2), dict(scale_factor=(2, 1, 3))),
    ((1, 2, 3, 4), dict(size=(5, 7), mode="bilinear")),
    ((1, 2, 3, 4), dict(size=(5, 7), mode="bilinear", align_corners=True)),
    ((1, 2, 3, 4), dict(scale_factor=(2.5, 1.3), mode="bilinear")),
    ((1, 2, 3, 4), dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)),
    ((1, 2, 6, 5), dict(size=(2, 3), mode="bilinear")),  # downsampling
    ((2, 3, 7), dict(scale_factor=3, mode="linear", align_corners=True)),
    ((1, 2, 4), dict(size=1, mode="linear", align_corners=True)),
    ((1, 1, 2, 3, 2), dict(size=(3, 4, 5), mode="trilinear")),
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_interpolate_follows_torch(shape, options, dtype):
    a = RNG.normal(size=shape).astype(dtype)
    agree_with_torch(lambda x: gc.interpolate(x, **options),
                     lambda x: F.interpolate(x, **options), [a],
                     backends=("numpy", "llvm") if dtype == "float32" else ("numpy",))


@pytest.mark.parametrize("build,message", [
    (lambda x: gc.interpolate(x, 4, mode="nearest", align_corners=True),
     "align_corners can only be set with the linear modes"),
    (lambda x: gc.interpolate(x, 4, mode="bicubic"), "mode must be one of"),
    (lambda x: gc.interpolate(x, 4, mode="linear"), "mode 'linear' needs a 3-D input"),
    (lambda x: gc.interpolate(x), "give size or scale_factor, exactly one"),
    (lambda x: gc.interpolate(x, (2, 3, 4)), r"size needs 2 entries \(one per spatial axis\)"),
    (lambda x: gc.interpolate(x, scale_factor=0), "scale_factor must be positive"),
    (lambda x: gc.interpolate(x, scale_factor=0.1), "output sizes must be positive ints"),
    (lambda x: gc.interpolate(gc.cast(x, "int32"), 4), "input must be float32 or float64"),
    (lambda x: gc.interpolate(x[0, 0], 4), r"needs a 3-, 4- or 5-D input"),
    (lambda x: gc.interpolate(x, 4, antialias=True), "antialias=True is not supported"),
    (lambda x: gc.interpolate(gc.input("s", (1, 1, "H", 3)), 4), "axis 2 of .* symbolic"),
])
def test_bad_arguments_are_refused_at_build_time(build, message):
    x = gc.input("x", (1, 2, 3, 4))
    with pytest.raises((gc.GraphError, gc.GraphTypeError),
                       match="interpolate: " + message + r".*test_interpolate.py"):
        build(x)
