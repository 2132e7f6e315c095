"""What each process runs in the tests of tests/distributed/test_mpi.py:

    mpiexec -n 2 python tests/distributed/worker.py SCENARIO OUT_DIR [ARGS]

Scenarios write their results as .npz/.json files into OUT_DIR (rank 0, or each rank
with its number in the name). The models and data are built here, so the tests compute
their single-process references from the same definitions."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import graphc as gc
from graphc import nn

GLOBAL_BATCH = 16
SAMPLES = 67          # 5 global batches, the last of 3 samples (2 and 1 over 2 processes)
DATA_SEED = 3
CONFIGS = [("mlp", "sgd"), ("mlp", "adam"), ("lenet", "sgd"), ("lenet", "adam")]


def build_model(kind: str) -> nn.Module:
    nn.manual_seed(0)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                             nn.Linear(16, 10))
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def build_optimizer(kind: str, params) -> gc.optim.Optimizer:
    if kind == "sgd":
        return gc.optim.SGD(params, lr=0.05, momentum=0.9)
    return gc.optim.Adam(params, lr=1e-3)


def data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    shape = (SAMPLES, 20) if kind == "mlp" else (SAMPLES, 1, 28, 28)
    return (rng.standard_normal(shape).astype(np.float32),
            rng.integers(0, 10, SAMPLES).astype(np.int32))


def inputs(kind: str):
    x = gc.input("x", ("N", 20) if kind == "mlp" else ("N", 1, 28, 28))
    return x, gc.input("y", ("N",), "int32")


def step_builder(model_kind: str, optimizer_kind: str):
    """A step builder: the model, its loss, an optimizer and a correct-answer count."""
    def build() -> gc.distributed.TrainingStep:
        model = build_model(model_kind)
        x, y = inputs(model_kind)
        logits = model(x, training=True)
        loss = gc.softmax_cross_entropy(logits, y)
        correct = gc.sum(gc.cast(gc.equal(gc.argmax(logits, -1), gc.cast(y, "int64")),
                                 "float32"))
        return gc.distributed.TrainingStep([x, y], loss,
                                           build_optimizer(optimizer_kind, model.params()),
                                           totals={"correct": correct}, model=model)
    return build


def reference(model_kind: str, optimizer_kind: str) -> tuple[dict, list[float]]:
    """One process, one compiled step (gc.compile with the optimizer's updates) on every
    whole global batch: the params after the epoch and the losses."""
    model = build_model(model_kind)
    x, y = inputs(model_kind)
    loss = gc.softmax_cross_entropy(model(x, training=True), y)
    opt = build_optimizer(optimizer_kind, model.params())
    step = gc.compile([x, y], [loss], updates=opt.updates(loss), threads=1)
    losses = [float(step(xb, yb)[0]) for xb, yb in
              gc.data.Batches(*data(model_kind), batch_size=GLOBAL_BATCH, seed=DATA_SEED)]
    return model.state_dict(), losses


# ----- scenarios ------------------------------------------------------------------------

def equality(world, out: Path) -> None:
    """Every config: one epoch of data-parallel steps over sharded batches; rank 0 saves
    the params, the global losses and whether the processes are in sync; each rank saves
    the ids of the samples it saw."""
    for model_kind, optimizer_kind in CONFIGS:
        name = f"{model_kind}-{optimizer_kind}"
        ddp = gc.distributed.DataParallel(step_builder(model_kind, optimizer_kind), world)
        x, y = data(model_kind)
        ids = np.arange(SAMPLES)
        losses, seen = [], []
        batches = gc.data.Batches(x, y, ids, batch_size=GLOBAL_BATCH, seed=DATA_SEED,
                                  rank=world.rank, world_size=world.size)
        for xb, yb, ib in batches:
            losses.append(ddp.step(xb, yb)["loss"])
            seen.append(ib.tolist())
        (out / f"{name}.seen.{world.rank}.json").write_text(json.dumps(seen))
        in_sync = ddp.in_sync()
        if world.is_main:
            model = ddp.split.spec.model
            np.savez(out / f"{name}.npz", **model.state_dict())
            (out / f"{name}.json").write_text(json.dumps({"losses": losses, "in_sync": in_sync,
                                                          "buckets": len(ddp.buckets)}))


def checkpoints(world, out: Path) -> None:
    """Two steps, rank 0 saves; two more steps; load the checkpoint on every process
    (rank 1 with its params scrambled first) and take the same two steps again: the
    params must come out as after the first time."""
    ddp = gc.distributed.DataParallel(step_builder("mlp", "adam"), world)
    x, y = data("mlp")
    batches = list(gc.data.Batches(x, y, batch_size=GLOBAL_BATCH, seed=DATA_SEED,
                                   rank=world.rank, world_size=world.size))
    for xb, yb in batches[:2]:
        ddp.step(xb, yb)
    ddp.epoch = 1
    path = ddp.save(out / "state.npz")
    files = sorted(p.name for p in out.iterdir() if p.name.startswith("state"))
    for xb, yb in batches[2:4]:
        ddp.step(xb, yb)
    first = {k: v.copy() for k, v in ddp.state_arrays().items()}
    if world.rank == 1:
        for p in ddp.split.state:
            p.value = np.zeros_like(p.value)
    ddp.epoch = 7
    ddp.load(path)
    restored = (ddp.epoch, ddp.split.steps, ddp.in_sync())
    for xb, yb in batches[2:4]:
        ddp.step(xb, yb)
    again = ddp.state_arrays()
    same = all(np.array_equal(first[k], again[k]) for k in first)
    (out / f"checkpoint.{world.rank}.json").write_text(json.dumps(
        {"files_after_save": files, "restored": restored, "same": same}))
    try:
        ddp.load(out / "missing.npz")
    except FileNotFoundError as exc:
        (out / f"missing.{world.rank}.txt").write_text(str(exc))


def trainer(world, out: Path) -> None:
    """The Trainer's loop made data-parallel: two epochs with validation and rank-0
    checkpoints; every rank records its history and evaluation."""
    model = build_model("mlp")
    opt = build_optimizer("adam", model.params())
    tr = gc.train.Trainer(model, opt)
    ddp = gc.distributed.DataParallel(tr, world)
    x, y = data("mlp")
    history = ddp.fit(x[:48], y[:48], epochs=2, batch_size=GLOBAL_BATCH, seed=DATA_SEED,
                      validation=(x[48:], y[48:]), checkpoint_path=out / "trainer.npz")
    scores = ddp.evaluate(x[48:], y[48:], batch_size=8)
    (out / f"trainer.{world.rank}.json").write_text(json.dumps(
        {"history": history.epochs, "scores": scores, "in_sync": ddp.in_sync(),
         "params": {k: v.tolist() for k, v in model.state_dict().items()}}))


def fail(world, out: Path, how: str) -> None:
    """Rank 1 raises (or hangs) after one step; rank 0 goes on to the next step and so
    waits in a collective for rank 1."""
    ddp = gc.distributed.DataParallel(step_builder("mlp", "sgd"), world)
    x, y = data("mlp")
    batches = gc.data.Batches(x, y, batch_size=GLOBAL_BATCH, rank=world.rank,
                              world_size=world.size)
    for k, (xb, yb) in enumerate(batches):
        if k == 1 and world.rank == 1:
            if how == "raise":
                raise RuntimeError("injected failure on rank 1")
            time.sleep(3600)
        ddp.step(xb, yb)
    (out / f"finished.{world.rank}").write_text("the job was not ended")


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    world = gc.distributed.init()
    if scenario == "world":
        (out / f"world.{world.rank}.json").write_text(json.dumps(
            {"rank": world.rank, "size": world.size, "local_rank": world.local_rank,
             "local_size": world.local_size, "threads": gc.distributed.default_threads(world),
             "sum": world.allreduce(np.array([world.rank + 1.0])).tolist()}))
    elif scenario == "equality":
        equality(world, out)
    elif scenario == "checkpoints":
        checkpoints(world, out)
    elif scenario == "trainer":
        trainer(world, out)
    elif scenario == "fail":
        fail(world, out, sys.argv[3])
    else:
        raise SystemExit(f"worker: unknown scenario {scenario!r}")


if __name__ == "__main__":
    main()
