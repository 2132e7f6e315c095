"""The LLVM conv2d_grad_weight paths against the NumPy backend: which path a shape takes,
exact sums on integer-valued data (every term present, none twice), float32 rounding
within a bound derived from the summation order, IEEE specials, and identical bits for
any thread count."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.lower.conv.grad_weight import Channels, Shifted, grad_weight_path
from graphc.backends.llvm.runtime import target

# N, C, H, W, O, kh, kw, ph, pw
MODELS = {
    "lenet1": (64, 1, 28, 28, 6, 5, 5, 2, 2),
    "lenet2": (64, 6, 14, 14, 16, 5, 5, 0, 0),
    "digits1": (64, 1, 8, 8, 16, 3, 3, 1, 1),
    "digits2": (64, 16, 4, 4, 32, 3, 3, 1, 1),
}
SWEEP = [
    (1, 1, 1, 1, 1, 1, 1, 0, 0),     # one pixel
    (3, 2, 5, 7, 5, 3, 3, 1, 1),     # non-square, 5 output channels
    (1, 3, 3, 2, 7, 1, 3, 0, 2),     # 1x3 kernel, a plane of 2x4 outputs
    (3, 5, 9, 6, 9, 5, 3, 2, 1),     # 5x3 kernel, unequal padding
    (1, 4, 6, 11, 3, 5, 5, 2, 2),
    (3, 7, 4, 4, 10, 3, 3, 1, 1),    # 63 taps, 10 output channels
    (2, 3, 12, 20, 17, 1, 1, 0, 0),  # 1x1 kernel, 240 pixels (masked last vector)
    (1, 2, 2, 3, 4, 5, 5, 2, 2),     # output 2x3: the padding holds most of each tap
    (2, 2, 3, 3, 3, 1, 1, 2, 2),     # padding beyond the kernel: whole rows of zeros
    (1, 2, 7, 5, 3, 3, 5, 2, 1),
    (3, 1, 8, 8, 6, 5, 5, 2, 2),
    (2, 3, 4, 4, 70, 3, 3, 1, 1),    # 16 pixels: 5 vectors of channels in groups of 2
    (2, 3, 3, 3, 35, 2, 2, 0, 0),    # 4 pixels, 2x2 kernel: on AVX2 5 vectors in groups of 3
    (3, 2, 3, 5, 9, 3, 3, 1, 1),     # 15 pixels
    (4, 5, 2, 2, 20, 1, 1, 0, 0),    # 1x1 kernel on 2x2 planes
    (2, 3, 3, 6, 50, 2, 4, 0, 1),    # 2x4 kernel: groups of 3 vectors of channels
]


def _shape_id(shape) -> str:
    return "x".join(map(str, shape))


def _graph(shape, dtype):
    n, c, h, wd, o, kh, kw, ph, pw = shape
    x, w = gc.input("x", (n, c, h, wd), dtype), gc.input("w", (o, c, kh, kw), dtype)
    y = gc.conv2d(x, w, padding=(ph, pw))
    g = gc.input("g", y.shape, dtype)
    (gw,) = gc.grad(gc.sum(y * g), [w])
    return [x, w, g], gw, y.shape


def _run(shape, dtype, arrays, backend="llvm", threads=1):
    inputs, gw, _ = _graph(shape, dtype)
    options = {"threads": threads} if backend == "llvm" else {}
    return gc.compile(inputs, [gw], backend=backend, **options)(*arrays)[0]


def _arrays(shape, dtype, rng, draw):
    n, c, h, wd, o, kh, kw, ph, pw = shape
    _, _, y_shape = _graph(shape, dtype)
    return [draw(rng, s).astype(dtype) for s in ((n, c, h, wd), (o, c, kh, kw), y_shape)]


def _plan(shape, dtype="float32") -> Channels | Shifted:
    n, c, h, wd, o, kh, kw, ph, pw = shape
    g = (n, o, h + 2 * ph - kh + 1, wd + 2 * pw - kw + 1)
    plan = {"channels": Channels, "shifted": Shifted}[_path(shape, dtype)]
    return plan.of(dtype, (n, c, h, wd), g, (kh, kw), (ph, pw))


def _path(shape, dtype="float32", stride=1) -> str:
    n, c, h, wd, o, kh, kw, ph, pw = shape
    g = (n, o, (h + 2 * ph - kh) // stride + 1, (wd + 2 * pw - kw) // stride + 1)
    return grad_weight_path(dtype, (n, c, h, wd), g, (kh, kw), (stride, stride), (ph, pw))


@pytest.mark.parametrize("level", ["x86-64-v4", "x86-64-v3", "x86-64-v2"])
def test_path_rule(level):
    """The rule on AVX-512 (16 float32 lanes, 24 accumulators), AVX2 (8 lanes, 12) and
    SSE (4 lanes, 12)."""
    with target.using(target.resolve(level)):
        for dtype in ("float32", "float64"):
            for name in ("lenet1", "lenet2", "digits1"):
                assert _path(MODELS[name], dtype) == "shifted", name
            # 16 pixels: one float32 vector of AVX-512, two of AVX2, four of SSE; on
            # Zen 3 the channels path took 0.11 ms where the shifted one took 0.31
            assert _path(MODELS["digits2"], dtype) == "channels"
        assert _path((2, 3, 5, 5, 8, 3, 3, 1, 1)) == "shifted"  # 25 pixels
        assert _path((1, 2, 2, 3, 4, 5, 5, 2, 2)) == "shifted"  # 25 taps: too many registers
        assert _path((1, 2, 3, 2, 4, 3, 3, 1, 1)) == "channels"  # 6 pixels, 9 taps
        for shape in [*MODELS.values(), *SWEEP]:
            assert _path(shape, stride=2) == "gemm", shape
        # The benchmark layer (its shifted copy would be 27 MB) keeps the GEMM.
        assert _path((32, 64, 32, 32, 64, 3, 3, 1, 1)) == "gemm"


@pytest.mark.parametrize("level", ["x86-64-v4", "x86-64-v3"])
def test_cases_cover_both_paths(level):
    """The shapes below reach every variant of the generated code of either path, with
    the register blocks of AVX-512 and of AVX2 alike (the tests compile them for the host)."""
    chosen = target.resolve(level)
    with target.using(chosen):
        plans = [_plan(s, dt) for s in [*MODELS.values(), *SWEEP]
                 for dt in ("float32", "float64")]
    shifted = [p for p in plans if isinstance(p, Shifted)]
    assert any(p.chunks > 1 for p in shifted) and any(p.chunks == 1 for p in shifted)
    assert any(p.o % p.ob for p in shifted) and any(p.taps % p.tb for p in shifted)
    # whole vectors: half ones cost as much on CPUs that do not split their vectors
    assert {p.lanes * p.dtype.itemsize for p in shifted} == {chosen.vector_bytes}
    assert any(p.ho * p.wo % p.lanes for p in shifted)  # a masked last vector
    assert any(p.ho * p.wo < p.lanes for p in shifted)  # a plane narrower than a vector
    assert any(p.ho * p.wo > 4 * p.lanes for p in shifted)  # a loop over vectors
    channels = [p for p in plans if isinstance(p, Channels)]
    assert {p.dtype.name for p in channels} == {"float32", "float64"}
    assert any(p.o % p.lanes for p in channels)  # padding channels
    assert any(p.vectors % p.group for p in channels)  # a short last group
    assert any(p.vectors == p.group for p in channels)  # one group
    assert any(p.ho * p.wo > p.lanes for p in channels)  # g transposed in several blocks
    assert any(p.ho * p.wo % p.lanes for p in channels)  # and a partial one


@pytest.mark.parametrize("cpu,lanes", [("x86-64-v3", 8), ("x86-64-v4", 16), ("znver4", 8)])
def test_half_vectors_only_where_the_cpu_splits_its_vectors(cpu, lanes):
    """LeNet's second layer (10 x 10 output pixels, float32): 13 ymm beat 25 xmm on AVX2
    (the half-vector choice, made for Zen 4, had halved this layer's speed on Zen 3); on
    an AVX-512 CPU 7 zmm beat 13 ymm, unless it splits each zmm op in two as Zen 4 does."""
    with target.using(target.resolve(cpu)):
        assert _plan(MODELS["lenet2"]).lanes == lanes


@pytest.mark.parametrize("level", ["x86-64-v4", "x86-64-v3"])
def test_shifted_blocks_fit_the_register_file(level):
    """The accumulators, the gradient vectors a pixel step holds and the streamed shifted
    vector fit the vector registers (LeNet's 4 x 3 block took 17 of AVX2's 16)."""
    chosen = target.resolve(level)
    with target.using(chosen):
        plans = [_plan(s, dt) for s in [*MODELS.values(), *SWEEP]
                 for dt in ("float32", "float64")]
    for p in plans:
        if isinstance(p, Shifted):
            assert p.ob * p.tb + p.ob + 1 <= chosen.vector_registers, p


def _small_integers(rng, shape):
    return rng.integers(-2, 3, size=shape)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [*MODELS.values(), *SWEEP],
                         ids=[*MODELS, *map(_shape_id, SWEEP)])
def test_exact_on_integers(shape, dtype):
    """Values in [-2, 2]: every product and partial sum is an integer below 4 * N*Ho*Wo
    < 2**24, exact in float32 in any order, so any order must give NumPy's result exactly."""
    arrays = _arrays(shape, dtype, np.random.default_rng(sum(shape)), _small_integers)
    got = _run(shape, dtype, arrays)
    expected = _run(shape, dtype, arrays, backend="numpy")
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def _normal(rng, shape):
    return rng.normal(size=shape)


LAMBDA = 6.0  # probabilistic bound below: fails with probability < 2 exp(-18) per element


def _rounding_bound(shape, arrays) -> np.ndarray:
    """Shifted path: each lane sums its N * ceil(Ho*Wo / lanes) terms one FMA (one
    rounding) at a time, then log2(lanes) additions join the lanes; channels path: one
    FMA per image and pixel. Either way k roundings in a row. The worst case,
    k * 2**-24 * sum |g * x|, is thousands of times the errors seen; with independent
    rounding errors (random data), the error exceeds LAMBDA * sqrt(k) * 2**-24 *
    sum |g * x| with probability below 2 exp(-LAMBDA**2 / 2) (Higham and Mary, SIAM J.
    Sci. Comput. 41(5), 2019). For lenet1 that is about 0.6, the size of an average
    term: a lost image row fails here, a lost term the exact test."""
    plan = _plan(shape)
    if isinstance(plan, Channels):  # one FMA per image and pixel, no lanes to join
        roundings = shape[0] * plan.ho * plan.wo
    else:
        roundings = shape[0] * -(-plan.ho * plan.wo // plan.lanes) + np.log2(plan.lanes)
    magnitudes = _run(shape, "float64", [np.abs(a).astype(np.float64) for a in arrays],
                      backend="numpy")
    return LAMBDA * np.sqrt(roundings) * 2.0 ** -24 * magnitudes


@pytest.mark.parametrize("shape", [*MODELS.values(), SWEEP[3], SWEEP[6], SWEEP[11]],
                         ids=[*MODELS, *map(_shape_id, (SWEEP[3], SWEEP[6], SWEEP[11]))])
def test_float32_rounding(shape):
    arrays = _arrays(shape, "float32", np.random.default_rng(7), _normal)
    got = _run(shape, "float32", arrays).astype(np.float64)
    exact = _run(shape, "float64", [a.astype(np.float64) for a in arrays], backend="numpy")
    error = np.abs(got - exact)
    bound = _rounding_bound(shape, arrays)
    assert np.all(error <= bound), float(np.max(error / bound))
    # The bound is not vacuous: results are far larger than it.
    assert np.median(np.abs(exact)) > 10 * np.median(bound)


def test_ieee_specials_as_numpy():
    """inf and NaN in x and g give NaN and infinities where NumPy does (padding zeros times
    an infinite g make NaN; products never meet values outside their tap)."""
    shape = MODELS["digits1"]
    x, w, g = _arrays(shape, "float32", np.random.default_rng(3), _normal)
    x[0, 0, 0, 0], x[5, 0, 3, 7], x[9, 0, 7, 7] = np.inf, -np.inf, np.nan
    g[2, 4, 0, 0], g[3, 7, 5, 5] = np.inf, -np.inf
    got = _run(shape, "float32", [x, w, g])
    with np.errstate(invalid="ignore"):  # NumPy's own inf * 0
        expected = _run(shape, "float32", [x, w, g], backend="numpy")
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(got), kind(expected))
    assert np.isfinite(got).any()


@pytest.mark.parametrize("shape", [MODELS["lenet1"], MODELS["digits2"], SWEEP[5], SWEEP[11]],
                         ids=["lenet1", "digits2", *map(_shape_id, (SWEEP[5], SWEEP[11]))])
def test_identical_bits_for_any_thread_count(shape):
    arrays = _arrays(shape, "float32", np.random.default_rng(11), _normal)
    reference = _run(shape, "float32", arrays, threads=1)
    for threads in (2, 3, 4):
        np.testing.assert_array_equal(_run(shape, "float32", arrays, threads=threads),
                                      reference, err_msg=f"threads={threads}")


# The GEMM path with its depth split into image chunks: stride 2 (no direct path), a
# depth of 16 images x 32 x 32 pixels, 4 chunks.
SPLIT = ((16, 4, 64, 64), (8, 4, 3, 3), (2, 2), (1, 1))


def _split_step(dtype, threads=None, backend="llvm"):
    x_shape, w_shape, stride, padding = SPLIT
    x = gc.input("x", x_shape, dtype)
    w = gc.input("w", w_shape, dtype)
    y = gc.conv2d(x, w, stride=stride, padding=padding)
    g = gc.input("g", y.shape, dtype)
    options = {"threads": threads} if backend == "llvm" else {}
    return gc.compile([x, w, g], gc.grad(gc.sum(y * g), [w])[0], backend=backend, **options)


def _split_arrays(dtype, values):
    rng = np.random.default_rng(7)
    x_shape, w_shape, _, _ = SPLIT
    g_shape = (x_shape[0], w_shape[0], 32, 32)
    return [values(rng, s).astype(dtype) for s in (x_shape, w_shape, g_shape)]


def test_split_gemm_path_is_taken():
    from graphc.backends.llvm.lower.conv.grad_weight import _splits
    x_shape, w_shape, stride, padding = SPLIT
    assert grad_weight_path("float32", x_shape, (16, 8, 32, 32), w_shape[2:], stride,
                            padding) == "gemm"
    assert _splits(16, 16 * 32 * 32) == 4 and _splits(15, 15 * 64 * 64) == 3
    assert _splits(7, 7 * 64 * 64) == 1 and _splits(16, 16 * 8 * 8) == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_gemm_exact_on_integers_and_the_same_on_any_thread_count(dtype):
    arrays = _split_arrays(dtype, _small_integers)
    expected = _split_step(dtype, backend="numpy")(*arrays)
    results = [_split_step(dtype, threads)(*arrays) for threads in (1, 2, 3)]
    np.testing.assert_array_equal(results[0], expected)
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])
    # Random values: the chunks' partial sums round differently from NumPy, not more.
    arrays = _split_arrays(dtype, _normal)
    got, reference = _split_step(dtype, 2)(*arrays), _split_step(dtype, backend="numpy")(*arrays)
    scale = np.abs(reference).max()
    np.testing.assert_allclose(got, reference, rtol=0, atol=scale * (1e-5 if dtype ==
                                                                      "float32" else 1e-13))
