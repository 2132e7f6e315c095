"""Data-parallel training under `mpiexec -n 2`: each test launches tests/distributed/
worker.py in a temporary folder and checks what the processes wrote.

Where mpiexec or mpi4py is missing these tests skip, except in CI (CI set), where they
fail saying so: CI installs the test extra, which brings both (mpi4py and mpich)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from tests.distributed import worker

WORKER = Path(worker.__file__)
ROOT = WORKER.parents[2]
LAUNCH_SECONDS = 600  # a cold compile of every function of a scenario, on a busy machine
# Measured (2 processes, 5 steps of SGD with momentum or Adam, 67 samples in global batches
# of 16, the last of 3): the largest difference from the single-process run on the whole
# batches was 3.6e-7 (LeNet, Adam; 1.8e-7 LeNet SGD, 6e-8 the MLP), i.e. 4.3e-6 of that
# param's largest magnitude. The float32 sums of two half-batch gradients round
# differently from one whole-batch sum; the bound leaves a margin of about 5.
RTOL, ATOL = 1e-5, 2e-6


def mpiexec() -> str:
    """The mpiexec beside this Python (a venv with the mpich wheel) or on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    missing = []
    if found is None:
        missing.append("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        missing.append("mpi4py")
    if missing:
        message = (f"{' and '.join(missing)} not found: pip install 'graphc[mpi]' (mpi4py and "
                   "mpich, which brings mpiexec); the test extra installs them")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def launch(scenario: str, out: Path, *args: str, env: dict | None = None,
           timeout: float = LAUNCH_SECONDS) -> tuple[subprocess.CompletedProcess, float]:
    """Run the scenario on 2 processes; the completed process and the seconds it took."""
    out.mkdir(parents=True, exist_ok=True)
    return run_two(str(WORKER), scenario, str(out), *args, cwd=out, env=env, timeout=timeout)


def run_two(script: str, *args: str, cwd: Path, env: dict | None = None,
            timeout: float = LAUNCH_SECONDS) -> tuple[subprocess.CompletedProcess, float]:
    """`mpiexec -n 2 python script args` (output lines prefixed by the rank)."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    command = [mpiexec(), "-prepend-rank", "-n", "2", sys.executable, script, *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return done, time.perf_counter() - start


def succeeded(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, f"mpiexec failed ({done.returncode}):\n{done.stderr[-4000:]}"


def test_world_of_two(tmp_path):
    done, _ = launch("world", tmp_path)
    succeeded(done)
    worlds = [json.loads((tmp_path / f"world.{r}.json").read_text()) for r in (0, 1)]
    assert [(w["rank"], w["size"], w["local_rank"], w["local_size"]) for w in worlds] == [
        (0, 2, 0, 2), (1, 2, 1, 2)]
    assert all(w["sum"] == [3.0] for w in worlds)
    # two processes on this machine share its CPUs
    assert all(w["threads"] == max(1, (os.cpu_count() or 1) // 2) for w in worlds)


def test_equal_to_one_process_same_bits_every_run_and_sharded(tmp_path):
    """One test for the two runs it needs (a fixture shared by several tests would run
    once per pytest-xdist worker)."""
    runs = []
    for k in range(2):
        done, _ = launch("equality", tmp_path / f"run{k}")
        succeeded(done)
        runs.append(tmp_path / f"run{k}")
    for model, optimizer in worker.CONFIGS:
        name = f"{model}-{optimizer}"
        expected, losses = worker.reference(model, optimizer)
        got = np.load(runs[0] / f"{name}.npz")
        assert sorted(got.files) == sorted(expected)
        for key, value in expected.items():  # the params after every step of an epoch
            np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name}: {key}")
        record = json.loads((runs[0] / f"{name}.json").read_text())
        assert record["in_sync"], f"{name}: the two processes' params differ"
        np.testing.assert_allclose(record["losses"], losses, rtol=1e-5, err_msg=name)
        again = np.load(runs[1] / f"{name}.npz")
        for key in got.files:  # deterministic: the same bits on every run
            assert got[key].tobytes() == again[key].tobytes(), f"{name}: {key}"
    seen = [json.loads((runs[0] / f"mlp-sgd.seen.{r}.json").read_text()) for r in (0, 1)]
    batches = list(gc.data.Batches(np.arange(worker.SAMPLES), batch_size=worker.GLOBAL_BATCH,
                                   seed=worker.DATA_SEED))
    assert len(seen[0]) == len(seen[1]) == len(batches) == 5
    for k, (whole,) in enumerate(batches):
        assert seen[0][k] + seen[1][k] == whole.tolist()  # disjoint, in order, complete
        assert abs(len(seen[0][k]) - len(seen[1][k])) <= 1


def test_rank0_checkpoints_are_loaded_by_all(tmp_path):
    done, _ = launch("checkpoints", tmp_path)
    succeeded(done)
    for rank in (0, 1):
        record = json.loads((tmp_path / f"checkpoint.{rank}.json").read_text())
        assert record["files_after_save"] == ["state.npz"]  # written once, before save returned
        assert record["restored"] == [1, 2, True]  # epoch, step count, params in sync
        assert record["same"], f"rank {rank}: the steps after loading differ"
        # rank 0 could not read a missing checkpoint: every rank raised its error
        assert "missing.npz" in (tmp_path / f"missing.{rank}.txt").read_text()
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["state.npz"]


def test_trainer_fit_is_the_single_process_fit(tmp_path):
    done, _ = launch("trainer", tmp_path)
    succeeded(done)
    records = [json.loads((tmp_path / f"trainer.{r}.json").read_text()) for r in (0, 1)]
    assert records[0]["in_sync"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):  # reduced: the same on both
        assert [e[key] for e in records[0]["history"]] == [e[key] for e in records[1]["history"]]
    model = worker.build_model("mlp")
    trainer = gc.train.Trainer(model, worker.build_optimizer("adam", model.params()))
    x, y = worker.data("mlp")
    history = trainer.fit(x[:48], y[:48], epochs=2, batch_size=worker.GLOBAL_BATCH,
                          seed=worker.DATA_SEED, validation=(x[48:], y[48:]), progress=False)
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(records[0]["params"][key], value, rtol=RTOL, atol=ATOL)
    for mine, theirs in zip(records[0]["history"], history.epochs):
        assert mine["accuracy"] == theirs["accuracy"]
        np.testing.assert_allclose(mine["val_loss"], theirs["val_loss"], rtol=1e-5)
    assert records[0]["scores"]["accuracy"] == trainer.evaluate(x[48:], y[48:])["accuracy"]
    # the progress bar is drawn by rank 0 only; rank 0 alone wrote the checkpoint
    assert "epoch 2" in done.stderr and "[1]" not in done.stderr
    assert (tmp_path / "trainer.npz").exists()


@pytest.mark.parametrize("how", ["raise", "hang"])
def test_a_failing_process_ends_the_job(tmp_path, how):
    timeout = 10
    done, seconds = launch("fail", tmp_path, how, env={"GRAPHC_DIST_TIMEOUT": str(timeout)},
                           timeout=LAUNCH_SECONDS)
    assert done.returncode != 0
    assert not list(tmp_path.glob("finished.*")), "a process went on after the failure"
    if how == "raise":  # rank 1's error is printed, and rank 0 did not wait for a timeout
        assert "injected failure on rank 1" in done.stderr
        assert "rank 1 of 2 raised" in done.stderr
        assert "did not complete" not in done.stderr
    else:  # rank 0 gave up waiting after the timeout and ended the job
        assert f"did not complete within {timeout} s" in done.stderr
        assert seconds < timeout + 120


def test_the_ddp_digits_example_trains_and_resumes(tmp_path):
    pytest.importorskip("sklearn", reason="the digits come with scikit-learn (graphc[digits])")
    script, state = str(ROOT / "examples" / "ddp_digits.py"), str(tmp_path / "ddp.npz")
    done, _ = run_two(script, "--epochs", "2", "--no-progress", "--checkpoint", state,
                      cwd=tmp_path)
    succeeded(done)
    (line,) = [x for x in done.stdout.splitlines() if "test accuracy" in x]
    assert line.startswith("[0] CNN on digits, 2 process(es)") and "after 2 epochs" in line
    assert float(line.split("test accuracy ")[1].split()[0]) > 0.3  # chance: 0.1
    done, _ = run_two(script, "--epochs", "3", "--no-progress", "--checkpoint", state,
                      "--resume", cwd=tmp_path)
    succeeded(done)
    assert "after 3 epochs" in done.stdout
