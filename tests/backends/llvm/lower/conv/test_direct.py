"""The direct stride-1 convolution of the LLVM backend (lower/conv/direct_plan.py and
direct_emit.py): which shapes take it, and its forward (plain and with a bias/relu
epilogue) and input gradient against the NumPy reference, with identical bits for any
thread count."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.lower.conv.direct_plan import suits
from graphc.backends.llvm.lower.conv.paths import (
    forward_direct,
    forward_path,
    grad_input_direct,
    grad_input_path,
)
from graphc.ir.node import Node
from tests.backends.llvm.lower.conv.shared import (
    assert_matches_reference,
    assert_matches_reference_with_nonfinite,
    conv_and_input_grad,
)

# Each output sums up to a few hundred products of unit normals in another order (FMA
# chains over (c, ky, kx)) than the reference's BLAS: the differences measured stay near
# 1e-6 of the output scale, so 1e-5 relative to that scale leaves tenfold headroom.
RTOL = {"float32": 1e-5, "float64": 1e-12}

CONVS = {  # N, C, H, W, K, kh, kw, padding
    "lenet1": (64, 1, 28, 28, 6, 5, 5, 2),
    "lenet2": (64, 6, 14, 14, 16, 5, 5, 0),
    "digits1": (64, 1, 8, 8, 16, 3, 3, 1),
    # the digits CNN's second layer (16 -> 32) takes Winograd (test_winograd.py); with 12
    # input channels it stays here, on the "channels" variant
    "digits2-12": (64, 12, 4, 4, 32, 3, 3, 1),
}

SWEEP = [  # N, C, H, W, K, kh, kw, (ph, pw)
    (1, 1, 5, 5, 1, 1, 1, (0, 0)),     # 1x1 kernel, one channel each way
    (3, 3, 7, 9, 5, 3, 3, (1, 1)),     # non-square image, K off the register block
    (1, 2, 6, 11, 7, 5, 5, (2, 2)),    # 5x5, pad 2 ("same")
    (3, 5, 9, 6, 3, 3, 5, (0, 2)),     # non-square kernel, padding per axis
    (1, 4, 3, 2, 9, 3, 1, (1, 0)),     # a plane narrower than one vector
    (3, 7, 5, 4, 13, 2, 2, (1, 1)),    # even kernel, C and K primes
    (1, 3, 20, 23, 25, 5, 3, (2, 1)),  # several channel blocks and position blocks
    (3, 2, 4, 4, 2, 5, 5, (4, 4)),     # padding kernel - 1: the input gradient pads 0
    (1, 1, 2, 3, 4, 3, 3, (2, 2)),     # padding past half the kernel, tiny image
    # Taking the "channels" variant:
    (2, 4, 4, 4, 70, 3, 3, (1, 1)),    # five channel vectors, the last 6 channels wide
    (1, 6, 5, 5, 33, 3, 3, (0, 0)),    # items of 2 vectors and a last one of 1
    (2, 12, 6, 40, 24, 3, 3, (1, 1)),  # float64: rows too wide, in segments
    (1, 24, 3, 3, 40, 2, 2, (1, 1)),   # the input gradient: 24 channels, one vector and a half
]


def _arguments(inputs, dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=tuple(int(d) for d in i.shape)).astype(dtype) for i in inputs]


def _check(shape, dtype, epilogue, seed=0):
    inputs, (y, gx) = conv_and_input_grad(shape, dtype, epilogue)
    args = _arguments(inputs, dtype, seed)
    assert_matches_reference(inputs, (y, gx), args, epilogue, RTOL[dtype], str(shape))


def _forward_node(shape, dtype="float32", stride=1):
    n, c, h, wd, o, kh, kw, padding = shape
    x, w = gc.input("x", (n, c, h, wd), dtype), gc.input("w", (o, c, kh, kw), dtype)
    return gc.conv2d(x, w, stride=stride, padding=padding), x.shape, w.shape


def _grad_node(shape, dtype="float32", stride=1):
    y, x_shape, w_shape = _forward_node(shape, dtype, stride)
    g, w = gc.input("g", y.shape, dtype), gc.input("w", w_shape, dtype)
    node = Node.make("conv2d_grad_input", (g, w), input_shape=x_shape[2:],
                     **{k: y.attrs[k] for k in ("stride", "padding", "dilation", "groups")})
    return node, g.shape, w.shape


# The register-block variant each model layer is meant to take: vectors over pixels for
# few output channels (6), over channels for small planes with 16 or 32 of them.
VARIANTS = {"lenet1": ("positions", "positions"), "lenet2": ("channels", "positions"),
            "digits1": ("positions", "positions"), "digits2-12": ("channels", "channels")}


@pytest.mark.parametrize("name", CONVS)
def test_small_convolutions_take_the_direct_path(name):
    forward, gradient = VARIANTS[name]
    node, x, w = _forward_node(CONVS[name])
    assert forward_path(node, x, w) == "direct"
    assert forward_direct(node, x, w).variant == forward
    node, g, w = _grad_node(CONVS[name])
    assert grad_input_path(node, g, w) == "direct"
    assert grad_input_direct(node, g, w).variant == gradient


def test_sweep_covers_both_variants():
    variants = set()
    for shape in SWEEP:
        for dtype in ("float32", "float64"):
            node, x, w = _forward_node(shape, dtype)
            variants.add(forward_direct(node, x, w).variant)
            node, g, w = _grad_node(shape, dtype)
            if grad_input_path(node, g, w) == "direct":
                variants.add(grad_input_direct(node, g, w).variant)
    assert variants == {"positions", "channels"}


def test_other_convolutions_keep_their_paths():
    # 3 x 3 convolutions this big go to the Winograd kernel first (conv.py): here only the
    # direct kernel's own rule is checked.
    big = (32, 64, 32, 32, 64, 3, 3, 1)  # benchmarks/bench_gemm.py's convolution
    node, x, w = _forward_node(big)
    assert not suits(forward_direct(node, x, w))
    node, g, w = _grad_node(big)
    assert suits(grad_input_direct(node, g, w))  # input gradients: up to 600 terms
    deep = (4, 96, 32, 32, 96, 3, 3, 1)  # 864 terms per input-gradient element
    node, g, w = _grad_node(deep)
    assert not suits(grad_input_direct(node, g, w))
    cifar = (8, 3, 32, 32, 64, 3, 3, 1)  # few terms, many channels: full GEMM tiles
    node, x, w = _forward_node(cifar)
    assert forward_path(node, x, w) == "gemm"
    wide = (2, 2, 3, 40, 4, 1, 17, 0)  # more kernel columns than a block unrolls
    node, x, w = _forward_node(wide)
    assert forward_path(node, x, w) == "gemm"
    node, x, w = _forward_node(CONVS["lenet2"], stride=2)
    assert forward_path(node, x, w) == "gemm"
    node, g, w = _grad_node(CONVS["lenet2"], stride=2)
    assert grad_input_path(node, g, w) == "col2im"
    padded = (2, 3, 8, 8, 4, 3, 3, 3)  # padding as large as the kernel: no direct gradient
    node, g, w = _grad_node(padded)
    assert grad_input_path(node, g, w) == "col2im"
    node, x, w = _forward_node(padded)
    assert forward_path(node, x, w) == "direct"


def test_the_benchmark_layers_input_gradient_matches_numpy():
    """bench_gemm.py's 64-channel 3x3 layer: its input gradient takes the direct path,
    its forward pass the GEMM (batch 2: the path depends on the layer only)."""
    _check((2, 64, 32, 32, 64, 3, 3, 1), "float32", False)


@pytest.mark.parametrize("epilogue", [False, True], ids=["plain", "bias_relu"])
@pytest.mark.parametrize("name", CONVS)
def test_model_shapes_match_numpy(name, epilogue):
    n, *rest = CONVS[name]
    _check((3, *rest), "float32", epilogue)  # batch 3: the layers, not the batch, matter


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("epilogue", [False, True], ids=["plain", "bias_relu"])
@pytest.mark.parametrize("shape", SWEEP, ids=["x".join(map(str, s[:7])) for s in SWEEP])
def test_sweep_matches_numpy(shape, epilogue, dtype):
    node, x, w = _forward_node(shape, dtype)
    assert forward_path(node, x, w) == "direct"
    node, g, w = _grad_node(shape, dtype)
    kh, kw, (ph, pw) = shape[5], shape[6], shape[7]
    assert grad_input_path(node, g, w) == ("direct" if ph < kh and pw < kw else "col2im")
    _check(shape, dtype, epilogue)


NONFINITE = [(2, 1, 6, 6, 3, 5, 5, (2, 2)),    # positions; padding rows skipped if finite
             (1, 2, 4, 4, 2, 5, 5, (4, 4)),    # padding wider than the image
             (3, 12, 4, 4, 32, 3, 3, (1, 1))]  # channels


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the reference's NaN
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["x", "w", "g"])
@pytest.mark.parametrize("shape", NONFINITE, ids=["x".join(map(str, s[:7])) for s in NONFINITE])
def test_nonfinite_values_propagate_as_in_the_reference(shape, where, value):
    """A weight's inf or NaN meets the padding as in the reference: times zero in the
    forward pass (im2col), never in the input gradient (col2im)."""
    assert forward_path(*_forward_node(shape)) == grad_input_path(*_grad_node(shape)) == \
        "direct"
    inputs, (y, gx) = conv_and_input_grad(shape, "float32", False)
    args = _arguments(inputs, "float32", 3)
    target = args[["x", "w", "b", "g"].index(where)]
    target.reshape(-1)[[0, target.size // 2]] = value
    assert_matches_reference_with_nonfinite(inputs, (y, gx), args, 1e-5)


@pytest.mark.parametrize("shape", [(5, 6, 14, 14, 16, 5, 5, 0), (3, 3, 9, 11, 7, 3, 3, 1),
                                   (7, 12, 4, 4, 32, 3, 3, 1), (1, 1, 28, 28, 6, 5, 5, 2),
                                   (1, 6, 14, 14, 16, 5, 5, 0)])
def test_identical_bits_for_any_thread_count(shape):
    """Batch 1 too: with few images, bands of output rows are shared out as well."""
    inputs, (y, gx) = conv_and_input_grad(shape, "float32", True)
    args = _arguments(inputs, "float32", 4)
    for output in (y, gx):
        (reference,) = gc.compile(inputs, [output], threads=1)(*args)
        for threads in (2, 3, 4):
            (got,) = gc.compile(inputs, [output], threads=threads)(*args)
            np.testing.assert_array_equal(got, reference, err_msg=f"threads={threads}")
