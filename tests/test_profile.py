"""Executable.profile: per-kernel times on every backend, without side effects."""

import numpy as np
import pytest

from graphc.passes.report import count_kernels
from tests.backends_available import BACKENDS, gc


def _training_step(backend: str):
    rng = np.random.default_rng(0)
    x = gc.input("x", ("N", 6))
    y = gc.input("y", ("N",), dtype="int32")
    w = gc.param("w", rng.normal(size=(6, 4)).astype(np.float32))
    b = gc.param("b", np.zeros(4, np.float32))
    loss = gc.softmax_cross_entropy(gc.relu(x @ w + b), y)
    gw, gb = gc.grad(loss, [w, b])
    step = gc.compile([x, y], [loss], updates={w: w - 0.1 * gw, b: b - 0.1 * gb},
                      backend=backend)
    args = (rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 4, 8).astype(np.int32))
    return step, (w, b), args


@pytest.mark.parametrize("backend", BACKENDS)
def test_profile_times_every_kernel_and_changes_nothing(backend):
    step, params, args = _training_step(backend)
    before = [p.value.copy() for p in params]
    profile = step.profile(*args, calls=3)
    assert profile.backend == backend and profile.calls == 3
    # The LLVM plan may add copies (a param updated out of place); never fewer kernels.
    assert len(profile.kernels) >= count_kernels(step.program)
    ops = {k.op for k in profile.kernels}
    assert ops >= {n.op for n in step.graph.nodes if n.op in ("fused_matmul", "matmul")}
    assert all(k.seconds >= 0 for k in profile.kernels) and profile.seconds > 0
    assert profile.by_op() and sum(profile.by_op().values()) == pytest.approx(profile.seconds)
    for p, old in zip(params, before):
        np.testing.assert_array_equal(p.value, old)
    assert step.step == 0
    text = profile.format(top=2)
    assert "ms per call" in text and "more)" in text and "per op:" in text
    # The step still trains normally afterwards, from the restored params.
    (loss,) = step(*args)
    assert np.isfinite(loss)


@pytest.mark.parametrize("calls", [0, -1, 1.5, True])
def test_profile_rejects_bad_call_counts(calls):
    step, _, args = _training_step("numpy")
    with pytest.raises(ValueError, match="calls must be a positive int"):
        step.profile(*args, calls=calls)


def test_profile_checks_arguments_like_a_call():
    step, _, args = _training_step("numpy")
    with pytest.raises(ValueError, match="input 'x'"):
        step.profile(args[0][:, :5], args[1])


# ----- traces for chrome://tracing and Perfetto ----------------------------------------------

def _slices(trace, cat):
    return [e for e in trace["traceEvents"] if e["ph"] == "X" and e.get("cat") == cat]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_profile_is_a_trace_of_one_call_with_a_slice_per_kernel(backend):
    step, _, args = _training_step(backend)
    profile = step.profile(*args, calls=2)
    trace = profile.to_trace()
    assert trace["displayTimeUnit"] == "ms"
    assert trace["otherData"] == {"function": step.name, "backend": backend, "calls": 2,
                                  "kernels": len(profile.kernels),
                                  "seconds per call": profile.seconds}
    meta = {e["name"]: e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M"}
    assert meta["process_name"] == f"graphc {step.name} ({backend} backend)"
    assert meta["thread_name"] == ("interpreter" if backend == "numpy" else "thread 0")
    (call,) = _slices(trace, "call")
    kernels = _slices(trace, "kernel")
    assert call["name"] == step.name and call["ts"] == 0
    assert [e["name"] for e in kernels] == [k.op for k in profile.kernels]
    assert [e["args"]["kernel"] for e in kernels] == [k.index for k in profile.kernels]
    for event in [call, *kernels]:
        assert {"name", "ph", "ts", "dur", "pid", "tid"} <= event.keys()
        assert (event["pid"], event["tid"]) == (1, 0) and event["dur"] >= 0
    ends = 0.0
    for event, kernel in zip(kernels, profile.kernels):  # end to end, in execution order
        assert event["ts"] == pytest.approx(ends, abs=1e-9)
        assert event["dur"] == pytest.approx(kernel.seconds * 1e6, abs=1e-3)
        ends = event["ts"] + event["dur"]
    assert call["dur"] == pytest.approx(ends, abs=1e-9)  # the kernels nest inside the call
    assert call["dur"] == pytest.approx(profile.seconds * 1e6, abs=1e-3 * len(kernels))


def test_save_writes_json_a_viewer_loads(tmp_path):
    import json

    step, _, args = _training_step("numpy")
    profile = step.profile(*args, calls=1)
    path = profile.save(tmp_path / "step.json")
    assert path == tmp_path / "step.json"
    assert json.loads(path.read_text()) == profile.to_trace()
    with pytest.raises(ValueError, match=r"a trace is a \.json file, got '.*step\.txt'"):
        profile.save(tmp_path / "step.txt")
    assert not (tmp_path / "step.txt").exists()
