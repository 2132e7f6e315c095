"""debug_nans: a call whose outputs or new param values hold NaN writes nothing and names
the op where the NaN began, its inputs' ranges and the line that built it."""

import sys

import numpy as np
import pytest

import graphc as gc
from graphc.debug_nans import Checking, summarize

BACKENDS = ["numpy", "llvm"]


def _here() -> str:
    """The caller's 'file:line'."""
    frame = sys._getframe(1)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _sqrt_step(backend, **options):
    x = gc.input("x", ("N", 3))
    w = gc.param("w", np.ones((3, 2), np.float32))
    h, at_h = x @ w, _here()
    s, at_s = gc.sqrt(h), _here()
    loss = gc.mean(s)
    (gw,) = gc.grad(loss, [w])
    step = gc.compile([x], loss, updates={w: w - 0.1 * gw}, backend=backend, name="demo",
                      **options)
    return step, w, at_h, at_s


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forward_nan_names_the_op_its_inputs_and_line_and_writes_nothing(backend):
    step, w, at_h, at_s = _sqrt_step(backend, debug_nans=True)
    step(np.ones((4, 3), np.float32))  # a clean call updates as usual
    assert step.step == 1 and not (w.value == 1).all()
    before = w.value.copy()
    with pytest.raises(gc.NonFiniteValueError) as info:
        step(np.array([[1, 1, 1], [-5, 0, 0]], np.float32))
    err = info.value
    message = str(err)
    assert message.startswith(f"demo: sqrt built at {at_s} produced 2 NaN (of 4 values)")
    assert f"    matmul built at {at_h}: float32[2, 2], min -4." in message
    assert "it reaches output 0 (mean), the new value of param 'w'" in message
    assert "The params and the call count are as they were before this call" in message
    assert err.node.op == "sqrt" and err.kind == "nan" and err.function == "demo"
    assert isinstance(err, FloatingPointError)
    assert w.value.tobytes() == before.tobytes() and step.step == 1
    step(np.ones((2, 3), np.float32))
    assert step.step == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gradient_nan_names_the_op_it_differentiates_and_where_the_infinity_began(backend):
    x = gc.input("x", ("N", 3))
    w = gc.param("w", np.ones(3, np.float32))
    r, at = gc.sqrt(x * w), _here()
    loss = gc.mean(r)
    (gw,), at_grad = gc.grad(loss, [w]), _here()
    step = gc.compile([x], loss, updates={w: w - 0.1 * gw}, backend=backend, debug_nans=True)
    with pytest.raises(gc.NonFiniteValueError) as info:  # sqrt'(0) = inf, times x = 0: NaN
        step(np.array([[1, 0, 1], [2, 0, 0]], np.float32))
    lines = str(info.value).splitlines()
    assert lines[0] == (f"mean_step: mul in the gradient of mul (the mul built at {at}; "
                        f"gradient built at {at_grad}) produced 3 NaN (of 6 values)")
    assert lines[2].startswith("    mul in the gradient of sqrt") and "3 +inf of 6" in lines[2]
    assert lines[3] == "    input 'x': float32[2, 3], min 0, max 2"
    assert lines[4].startswith("  the infinity in its inputs began at div in the gradient of "
                               f"sqrt (the sqrt built at {at}")
    assert lines[4].endswith("which produced 3 infinities (of 6 values)")
    assert lines[5] == "  it reaches the new value of param 'w'"
    np.testing.assert_array_equal(w.value, [1, 1, 1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_data_is_named_as_the_input_that_held_it(backend):
    step, w, at_h, _ = _sqrt_step(backend, debug_nans=True)
    x = np.ones((4, 3), np.float32)
    x[2, 1] = np.nan
    with pytest.raises(gc.NonFiniteValueError, match=rf"demo: input 'x' already held 1 NaN "
                       rf"\(of 12 values\) when the call began; first used by matmul built "
                       rf"at {at_h}\n"):
        step(x)
    assert (w.value == 1).all() and step.step == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nan_that_no_result_depends_on_is_not_an_error(backend):
    """A where that masks out log of negatives computes NaN inside and none in its result."""
    x = gc.input("x", (4,))
    out = gc.where(gc.greater(x, 0.0), gc.log(x), 0.0)
    f = gc.compile([x], [out, gc.sum(out)], backend=backend, debug_nans=True)
    result, total = f(np.array([-1, 0, 1, np.e], np.float32))
    np.testing.assert_allclose(result, [0, 0, 0, 1], atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_infinities_are_errors_only_with_debug_infs(backend):
    x = gc.input("x", (3,))
    out, at = gc.log(x), _here()
    values = np.array([1, 0, 2], np.float32)
    assert gc.compile([x], out, backend=backend, debug_nans=True)(values)[1] == -np.inf
    checked = gc.compile([x], out, backend=backend, debug_infs=True, name="logs")
    with pytest.raises(gc.NonFiniteValueError, match=rf"logs: log built at {at} produced 1 "
                       r"infinities \(of 3 values\)\n  its inputs:\n    input 'x': "
                       r"float32\[3\], min 0, max 2\n  it reaches output 0 \(log\)"):
        checked(values)


@pytest.mark.parametrize("backend", BACKENDS)
def test_of_two_origins_the_first_in_execution_order_is_named(backend):
    x = gc.input("x", (2,))
    first, at = gc.sqrt(x - 3.0), _here()
    second = gc.log(x - 5.0)
    f = gc.compile([x], [first + second], backend=backend, debug_nans=True)
    with pytest.raises(gc.NonFiniteValueError) as info:
        f(np.array([1, 2], np.float32))
    assert str(info.value).startswith(f"add: sqrt built at {at} produced 2 NaN")
    assert "(1 other NaN(s) began elsewhere)" in str(info.value)


def test_the_environment_turns_checks_on_for_every_compile(monkeypatch):
    x = gc.input("x", (2,))
    monkeypatch.setenv("GRAPHC_DEBUG_NANS", "1")
    with pytest.raises(gc.NonFiniteValueError):
        gc.compile([x], gc.sqrt(x), backend="numpy")(np.array([-1, 1], np.float32))
    monkeypatch.setenv("GRAPHC_DEBUG_NANS", "0")
    monkeypatch.setenv("GRAPHC_DEBUG_INFS", "1")
    with pytest.raises(gc.NonFiniteValueError, match="infinities"):
        gc.compile([x], gc.log(x), backend="numpy")(np.array([0, 1], np.float32))
    monkeypatch.delenv("GRAPHC_DEBUG_INFS")
    assert np.isnan(gc.compile([x], gc.sqrt(x), backend="numpy")(
        np.array([-1, 1], np.float32))[0])


def test_bad_settings_are_refused(monkeypatch):
    x = gc.input("x", (2,))
    with pytest.raises(TypeError, match="debug_nans must be True or False, got 'yes'"):
        gc.compile([x], x * 2.0, backend="numpy", debug_nans="yes")
    monkeypatch.setenv("GRAPHC_DEBUG_NANS", "maybe")
    with pytest.raises(ValueError, match=r"GRAPHC_DEBUG_NANS='maybe': expected 1 \(on\) or 0"):
        gc.compile([x], x * 2.0, backend="numpy")


def test_the_trainer_under_debug_nans_names_the_input(monkeypatch):
    from tests.train.common import blobs, make

    monkeypatch.setenv("GRAPHC_DEBUG_NANS", "1")
    x, y = blobs(n=16)
    x[3, 0] = np.nan
    trainer = make(dropout=0.0)
    with pytest.raises(gc.NonFiniteValueError, match="train_step: input 'x' already held 1 NaN"):
        trainer.fit(x, y, epochs=1, batch_size=16, progress=False)
    assert all(np.isfinite(p.value).all() for p in trainer.model.params())


def test_a_nan_only_the_optimized_function_computes_is_called_a_graphc_bug():
    """When the graph as written computes a result finite that the compiled function gave
    as NaN, the message says so (simulated: a clean call's result reported bad)."""
    x = gc.input("x", (2,))
    f = gc.compile([x], x * 2.0, backend="numpy", name="double")
    error = Checking(False).error("double", f.source, f.backend, {}, [np.ones(2, np.float32)],
                                  {}, 0, [0], [np.array([np.nan, 2], np.float32)])
    assert str(error).startswith("double: output 0 (mul) hold(s) NaN as compiled, but the graph "
                                 "as written, run op by op on the numpy backend, computes no "
                                 "NaN there: an optimization changed the value")
    assert error.node is None


def test_summarize_counts_nan_and_infinities():
    values = np.array([1.5, np.nan, np.inf, -np.inf, -2], np.float32)
    assert summarize(values) == ("float32[5], min -2, max 1.5; 1 NaN, 1 +inf, 1 -inf of 5 "
                                 "values")
    assert summarize(np.full(2, np.nan)) == "float64[2], no finite values; 2 NaN of 2 values"
    assert summarize(np.zeros((0, 3), np.float32)) == "float32[0, 3], empty"
    assert summarize(np.array([3, 1], np.int32)) == "int32[2], min 1, max 3"
