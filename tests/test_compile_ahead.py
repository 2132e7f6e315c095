"""Executable.compile_ahead: a binding's code compiled on a background thread, found ready
(or waited for, never compiled twice) by the call that needs it."""

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm import runner


def _step():
    x = gc.input("x", ("N", 8))
    w = gc.param("w", np.linspace(-1, 1, 8, dtype=np.float32))
    loss = gc.mean(gc.tanh(x * w) ** 2)  # no matmul: no GEMM library to compile (no cache)
    (grad,) = gc.grad(loss, [w])
    return gc.compile([x], loss, updates={w: w - 0.1 * grad}), w


@pytest.fixture
def builds(monkeypatch) -> list[dict]:
    """The bindings of every Variant (native compile) made, in order."""
    made: list[dict] = []
    real = runner.Variant

    def counted(program, binding, *args, **kwargs):
        made.append(dict(binding))
        return real(program, binding, *args, **kwargs)

    monkeypatch.setenv("GRAPHC_CACHE", "0")
    monkeypatch.setattr(runner, "Variant", counted)
    return made


def _data(n: int) -> np.ndarray:
    return np.random.default_rng(n).normal(size=(n, 8)).astype(np.float32)


def test_the_call_finds_the_code_compiled_ahead(builds):
    step, _ = _step()
    thread = step.compile_ahead(_data(5))
    assert thread is not None
    thread.join()
    assert len(builds) == 1
    step(_data(5))
    assert len(builds) == 1  # the call compiled nothing
    assert step.compile_ahead(_data(5)) is None  # ready: nothing to do


def test_a_call_during_the_compile_waits_for_it_instead_of_compiling_again(builds):
    step, _ = _step()
    thread = step.compile_ahead(_data(7))
    step(_data(7))  # while the background compile runs (it takes far longer than this)
    thread.join()
    assert len(builds) == 1


def test_results_are_bit_for_bit_those_of_a_compile_at_the_call(builds):
    values = []
    for ahead in (False, True):
        step, w = _step()
        if ahead:
            step.compile_ahead(_data(3)).join()
        for n in (16, 3, 16, 3):
            step(_data(n))
        values.append(w.value.copy())
    np.testing.assert_array_equal(values[0], values[1])


def test_a_failed_compile_ahead_is_compiled_again_by_the_call(builds, monkeypatch):
    step, _ = _step()
    real = runner.Variant

    def fails_once(*args, **kwargs):
        monkeypatch.setattr(runner, "Variant", real)
        raise RuntimeError("LLVM ran out of something")

    monkeypatch.setattr(runner, "Variant", fails_once)
    step.compile_ahead(_data(4)).join()
    assert np.isfinite(step(_data(4)))


def test_the_numpy_backend_has_nothing_to_compile():
    x = gc.input("x", ("N", 2))
    step = gc.compile([x], x * 2, backend="numpy")
    assert step.compile_ahead(np.ones((3, 2), np.float32)) is None


def test_arguments_are_checked():
    x = gc.input("x", ("N", 2))
    with pytest.raises(ValueError, match="input 'x'"):
        gc.compile([x], x * 2).compile_ahead(np.ones((3, 4), np.float32))
