"""The Winograd convolution of the LLVM backend (lower/conv/winograd_plan.py and
winograd_emit.py): its transforms, which layers take it, and its forward pass (plain and
with a bias/relu epilogue) and input gradient against the NumPy reference, with inf and
NaN where the reference puts them and identical bits for any thread count."""

from __future__ import annotations

import re

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.lower.conv import winograd_plan
from graphc.backends.llvm.lower.conv.paths import (
    forward_path,
    forward_winograd,
    grad_input_path,
    grad_input_winograd,
)
from graphc.ir.node import Node
from tests.backends.llvm.lower.conv.shared import (
    assert_matches_reference,
    assert_matches_reference_with_nonfinite,
    conv_and_input_grad,
)

# Tolerances relative to the output's scale (max |expected|). F(4x4, 3x3) rounds the
# transformed tiles, whose entries grow by up to 100x (B^T's 4s and 5s on both sides):
# against a float64 reference, float32 outputs of 32-128 input channels (the rule's
# float32 range; these tests use 24-64) were off by up to 9.1e-6 of their scale
# (F(2x2, 3x3): 4.3e-7 at 64 channels). 3e-5 leaves threefold headroom; float64 measured
# 2.9e-14 (up to 256 channels), bound 1e-12.
RTOL = {"float32": 3e-5, "float64": 1e-12}

BENCHMARK = (32, 64, 32, 32, 64, 1)  # N, C, H, W, K, padding: the benchmarks' conv2d layer

SHAPES = [  # N, C, H, W, K, padding
    (2, 32, 8, 8, 32, 1),      # a 2 x 2 grid of tiles per image, blocks over images
    (5, 24, 4, 5, 24, 1),      # the fewest channels and pixels: a tile and a partial one
    (1, 33, 11, 9, 35, 1),     # batch 1 (bands of tile rows), C and K off the vectors
    (3, 40, 13, 10, 36, 0),    # padding 0, outputs 11 x 8: partial tiles at both edges
    (2, 48, 17, 23, 40, 1),    # tiles of a block over several tile rows, K past 5 panels
    (1, 64, 9, 30, 32, 1),     # a wide band, 64 channels
    (8, 136, 8, 7, 136, 1),    # float32 sums over 136 channels: F(2x2, 3x3) both ways
]


def _conv(shape, dtype, epilogue):
    """A 3x3 conv of shape (N, C, H, W, K, padding) and its input gradient."""
    n, c, h, wd, o, padding = shape
    return conv_and_input_grad((n, c, h, wd, o, 3, 3, padding), dtype, epilogue)


def _arguments(inputs, dtype, seed):
    """Unit-normal images and gradients; weights scaled so outputs stay O(1)."""
    rng = np.random.default_rng(seed)
    args = [rng.normal(size=tuple(int(d) for d in i.shape)).astype(dtype) for i in inputs]
    args[1] /= np.sqrt(9 * args[1].shape[1])
    return args


def _nodes(shape, dtype="float32", stride=1, kernel=3):
    """(conv2d node, x shape, w shape), (conv2d_grad_input node, g shape, w shape)."""
    n, c, h, wd, o, padding = shape
    x, w = gc.input("x", (n, c, h, wd), dtype), gc.input("w", (o, c, kernel, kernel), dtype)
    y = gc.conv2d(x, w, stride=stride, padding=padding)
    g = gc.input("g", y.shape, dtype)
    grad = Node.make("conv2d_grad_input", (g, w), input_shape=x.shape[2:],
                     **{k: y.attrs[k] for k in ("stride", "padding", "dilation", "groups")})
    return (y, x.shape, w.shape), (grad, g.shape, w.shape)


def _check(shape, dtype, epilogue, seed=0):
    forward, gradient = _nodes(shape, dtype)
    assert forward_path(*forward) == grad_input_path(*gradient) == "winograd"
    inputs, (y, gx) = _conv(shape, dtype, epilogue)
    args = _arguments(inputs, dtype, seed)
    assert_matches_reference(inputs, (y, gx), args, epilogue, RTOL[dtype], str(shape))


@pytest.mark.parametrize("m", [2, 4])
def test_transforms_compute_the_correlation(m):
    """A^T [(G g G^T) . (B^T d B)] A is the 3 x 3 correlation of an (m+2)^2 patch."""
    bt, g_mat, at = winograd_plan.transforms(m)
    rng = np.random.default_rng(m)
    d, g = rng.normal(size=(m + 2, m + 2)), rng.normal(size=(3, 3))
    got = at @ ((g_mat @ g @ g_mat.T) * (bt @ d @ bt.T)) @ at.T
    expected = np.array([[np.sum(d[y:y + 3, x:x + 3] * g) for x in range(m)]
                         for y in range(m)])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_routing():
    """The benchmark layer and layers of 16 channels each way take Winograd both ways;
    LeNet's 5x5 layers, the digits CNN's first layer (1 -> 16 channels), 8-channel,
    strided, non-3x3 and padding-3 ones do not."""
    forward, gradient = _nodes(BENCHMARK)
    assert forward_path(*forward) == grad_input_path(*gradient) == "winograd"
    for dtype in ("float32", "float64"):
        forward, gradient = _nodes(BENCHMARK, dtype)
        assert forward_path(*forward) == "winograd"
    lenet = [(64, 1, 28, 28, 6, 2), (64, 6, 14, 14, 16, 0)]
    for shape in lenet:
        forward, gradient = _nodes(shape, kernel=5)
        assert "winograd" not in (forward_path(*forward), grad_input_path(*gradient))
    for shape in [(64, 1, 8, 8, 16, 1), (8, 8, 8, 8, 16, 1), (8, 16, 8, 8, 8, 1),
                  (8, 24, 3, 3, 24, 1)]:
        forward, gradient = _nodes(shape)  # 1 or 8 channels one way; a 3 x 3 output plane
        assert "winograd" not in (forward_path(*forward), grad_input_path(*gradient))
    for shape in [(64, 16, 4, 4, 32, 1), (8, 16, 32, 32, 64, 1), (8, 64, 32, 32, 16, 1)]:
        forward, gradient = _nodes(shape)  # 16 channels one way: the digits CNN's second
        assert forward_path(*forward) == grad_input_path(*gradient) == "winograd"
    deep = (8, 256, 8, 8, 256, 1)  # float32's rounding error grows with the depth: F(2x2)
    assert forward_path(*_nodes(deep)[0]) == "winograd"
    assert forward_winograd(*_nodes(deep)[0]).m == 2
    assert forward_winograd(*_nodes(deep, "float64")[0]).m == 4
    assert forward_path(*_nodes((1, *deep[1:]))[0]) == "gemm"  # 16 tiles pay no transform
    assert forward_path(*_nodes((1, *deep[1:]), "float64")[0]) == "winograd"
    forward, gradient = _nodes(BENCHMARK, stride=2)
    assert "winograd" not in (forward_path(*forward), grad_input_path(*gradient))
    assert forward_winograd(*_nodes(BENCHMARK, kernel=5)[0]) is None
    padded = (2, 32, 16, 16, 32, 3)  # the input gradient would pad by -1
    forward, gradient = _nodes(padded)
    assert forward_path(*forward) == "winograd"
    assert grad_input_winograd(*gradient) is None


# float64 with the epilogue only: its code without one is float32's with other lanes
# (each case compiles two Winograd kernels, ~2-4 s of the suite).
RUNS = [("float32", False), ("float32", True), ("float64", True)]


@pytest.mark.parametrize("dtype,epilogue", RUNS,
                         ids=[f"{'bias_relu' if e else 'plain'}-{d}" for d, e in RUNS])
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_matches_numpy(shape, epilogue, dtype):
    _check(shape, dtype, epilogue)


def test_the_benchmark_layer_matches_numpy():
    _check((2, *BENCHMARK[1:]), "float32", False)  # batch 2: the path depends on the layer


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the reference's NaN
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["x", "w", "g"])
def test_nonfinite_values_propagate_as_in_the_reference(where, value):
    """Tiles with an inf or NaN are summed again term by term: a weight's inf or NaN
    meets the padding as in the reference (times zero in the forward pass, never in the
    input gradient), and neighbouring tiles stay finite."""
    shape = (2, 32, 10, 9, 33, 1)
    inputs, (y, gx) = _conv(shape, "float32", False)
    args = _arguments(inputs, "float32", 3)
    target = args[["x", "w", "b", "g"].index(where)]
    target.reshape(-1)[[0, target.size // 2]] = value
    assert_matches_reference_with_nonfinite(inputs, (y, gx), args, RTOL["float32"])


def test_overflow_in_the_transforms_falls_back_to_the_terms():
    """Finite values whose transformed tiles overflow float32 (B^T d B scales by up to
    100) give the reference's finite outputs."""
    shape = (1, 32, 8, 8, 32, 1)
    inputs, (y, _) = _conv(shape, "float32", False)
    args = _arguments(inputs, "float32", 5)
    args[0][0, :, 3, 3] = 3e37
    (got,) = gc.compile(inputs, [y])(*args)
    (expected,) = gc.compile(inputs, [y], backend="numpy")(*args)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.max(np.abs(expected)))


@pytest.mark.parametrize("shape", [SHAPES[1], SHAPES[3]])
def test_identical_bits_for_any_thread_count(shape):
    """Batch 1 too: with few images, bands of tile rows are shared out."""
    inputs, (y, gx) = _conv(shape, "float32", True)
    args = _arguments(inputs, "float32", 4)
    for output in (y, gx):
        (reference,) = gc.compile(inputs, [output], threads=1)(*args)
        for threads in (2, 3):
            (got,) = gc.compile(inputs, [output], threads=threads)(*args)
            np.testing.assert_array_equal(got, reference, err_msg=f"threads={threads}")


def test_layers_of_any_shape_share_one_compiled_library(tmp_path, monkeypatch):
    """The Winograd code is compiled once per machine (the library functions take shapes at
    run time): a second layer of other shapes compiles only its own small module."""
    from graphc.backends.llvm.runtime import target

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    monkeypatch.setenv("GRAPHC_PARALLEL_COMPILE", "0")  # every module compiled here, seen
    compiled: list[str] = []
    real = target.compile_object
    monkeypatch.setattr(target, "compile_object",
                        lambda ir, *rest: compiled.append(ir) or real(ir, *rest))
    modules = []
    for shape in ((2, 16, 8, 8, 16, 1), (3, 24, 6, 9, 20, 0)):
        n, c, h, wd, o, padding = shape
        x = gc.input("x", (n, c, h, wd))
        w = gc.input("w", (o, c, 3, 3))
        node = gc.conv2d(x, w, padding=padding)
        assert forward_path(node, x.shape, w.shape) == "winograd"
        images, weights = _arguments([x, w], np.float32, seed=n)
        expected = gc.compile([x, w], node, backend="numpy")(images, weights)
        got = gc.compile([x, w], node)(images, weights)
        np.testing.assert_allclose(got, expected, rtol=0, atol=RTOL["float32"]
                                   * np.abs(expected).max())
        modules.append(list(compiled))
        compiled.clear()
    first, second = modules
    libraries = [ir for ir in first if "graphc_entry" not in ir]
    assert sorted(ir.count('define void @"gc_winograd') for ir in libraries) == [1, 1]
    assert len(second) == 1 and "graphc_entry" in second[0]  # the second layer's own
    assert "define internal void @\"gc_winograd" not in second[0]


def _item_calls(name: str, intrinsic: str) -> int:
    """Calls of llvm.`intrinsic` in the forward float32 F(4x4) item function, built for
    target `name`."""
    from graphc.backends.llvm.codegen.module import ModuleContext
    from graphc.backends.llvm.lower.conv import winograd_emit
    from graphc.backends.llvm.runtime import target

    with target.using(target.resolve(name)):
        mc = ModuleContext()
        winograd_emit._item_function(mc, winograd_emit.Variant(np.dtype("float32"), 4, False))
        return len(re.findall(rf"call [^\n]*llvm\.{intrinsic}\.", str(mc.module)))


def test_gathers_only_where_llvm_keeps_them():
    """LLVM keeps a masked gather as an instruction only with AVX-512 here; elsewhere (SSE,
    and AVX2 at x86-64-v3 and znver3) it makes it a branch per lane with the partial vector
    on the stack. There the input transform loads lanes one by one (SSE) or each tile's
    patch rows as masked vector loads (AVX2)."""
    assert _item_calls("x86-64-v2", "masked.gather") == 0
    assert _item_calls("x86-64-v3", "masked.gather") == 0
    assert _item_calls("x86-64-v3", "masked.load") == 8 * 6  # a tile's 6 patch rows
    assert _item_calls("x86-64-v4", "masked.gather") == 36  # one per position of a 6 x 6 patch


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the reference's NaN
def test_lane_loads_match_numpy(monkeypatch):
    """The lane loads (x86-64-v2) read the padding, the edges of partial tiles and lanes
    past the batch's tiles as zeros, and leave inf and NaN where the reference puts them."""
    monkeypatch.setenv("GRAPHC_TARGET", "x86-64-v2")
    shape = (3, 24, 6, 9, 20, 1)
    inputs, (y, _) = _conv(shape, "float32", False)
    args = _arguments(inputs, "float32", 6)
    args[0][2, 5, 0, 8] = np.nan
    args[0][0, 0, 5, 0] = np.inf
    assert_matches_reference_with_nonfinite(inputs, (y,), args, RTOL["float32"])


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the reference's NaN
def test_avx2_row_loads_and_tile_row_stores_match_numpy(monkeypatch):
    """At x86-64-v3 the patch rows are masked loads (the padding and the columns past the
    image read as zeros) and blocks of tiles wholly inside the image are stored a tile row
    at a time (the others scattered): a 6 x 34 output has a block of whole tiles and
    blocks with tiles cut at the right and the bottom and lanes past the batch's tiles;
    20 output channels, a partial panel of the weights."""
    monkeypatch.setenv("GRAPHC_TARGET", "x86-64-v3")
    shape = (1, 16, 6, 34, 20, 1)
    inputs, (y, gx) = _conv(shape, "float32", False)
    args = _arguments(inputs, "float32", 7)
    args[0][0, 3, 5, 33] = np.nan  # both in the second tile row: the first stays finite
    args[3][0, 5, 5, 9] = np.inf
    assert_matches_reference_with_nonfinite(inputs, (y, gx), args, RTOL["float32"])
