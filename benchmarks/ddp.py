"""Data-parallel training (gc.distributed) measured with 1 and 2 processes of 1 thread
each, and a model of N machines.

    python -m benchmarks.ddp [--workloads lenet,transformer] [--steps 40] [--repeat 3]
                             [--json out.json]

Weak scaling: every process trains on a batch of the workload's size (lenet 64,
transformer 16 x 64 tokens), so 2 processes do twice the work of 1 per step. Each
process is pinned to a CPU of its own (rank r on the r-th CPU it may use) and runs
graphc with threads=1. The runs of 1 and 2 processes alternate `--repeat` times (the
machine may be shared: alternating spreads others' load over both) and each figure is
the median over the runs of each run's median step.

Printed per workload:
- samples/s: processes x batch / step time;
- the plain step (one gc.compile of forward, backward and SGD update, no communication)
  alone and with every process running it at once: the machine's own weak scaling (two
  processes share the memory system; on a shared machine, others' processes take CPU
  time), the ceiling of any data-parallel step here;
- the step's parts per process: gradient function, all-reduce wait (batch sizes and
  buckets; at 2 processes it includes waiting for the slower one), update function;
- the all-reduce of the gradient buckets alone (both processes start it together);
- weak-scaling efficiency: samples/s at 2 processes / (2 x samples/s at 1), with the CPU
  time per step and the machine's load average: on a machine that others load, a
  process waits for a CPU (wall time grows, CPU time does not) and, the step being
  synchronous, its partner waits with it;
- the model of N machines with one process each: the step's compute time measured at
  1 process plus a ring all-reduce of the gradients, 2(N-1)/N x gradient bytes /
  bandwidth, for 1, 10 and 100 Gbit/s links (latency left out: a few microseconds per
  message, 2(N-1) messages per bucket). The design does not overlap the all-reduce with
  the backward pass, so the two add.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import workloads

WORKLOADS = {"lenet": workloads.lenet, "transformer": workloads.transformer}
LINKS_GBIT = (1, 10, 100)
MACHINES = (2, 4, 8, 16, 64)
ROOT = Path(__file__).resolve().parent.parent


# ----- one process of a run (under mpiexec) -----------------------------------------------

def child(workload: str, steps: int, out: Path) -> None:
    """One process of a run: time the data-parallel step, the bucket all-reduce alone,
    and the plain step (every process at once); write this rank's record."""
    import graphc as gc

    world = gc.distributed.init()
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, [cpus[world.local_rank % len(cpus)]])
    w = WORKLOADS[workload]()
    data = w.arrays()
    args = (data["x"], data["y"])
    ddp = gc.distributed.DataParallel(lambda: _training_step(w, data), world, threads=1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    times, cpu = _timed(lambda: ddp.step(*args), steps, world,
                        reset=lambda: setattr(ddp.split, "timings", gc.distributed.Timings()))
    buckets = [b.buffer for b in ddp.buckets]

    def allreduce() -> None:
        world.barrier()  # both start together: the transfer alone, no waiting for a partner
        start = time.perf_counter()
        world.wait([world.start_allreduce(b) for b in buckets], "benchmark all-reduce")
        reduce_times.append(time.perf_counter() - start)

    reduce_times: list[float] = []
    for _ in range(steps):
        allreduce()
    # The whole step compiled as one function, no communication, every process at once:
    # what the machine gives N independent processes, the ceiling of data parallelism.
    spec = _training_step(w, data)
    plain = gc.compile(spec.inputs, [spec.loss], updates=spec.optimizer.updates(spec.loss),
                       threads=1)
    plain_times, _ = _timed(lambda: plain(*args), steps, world)
    record = {"rank": world.rank, "size": world.size, "batch": w.batch, "load": load,
              "step": statistics.median(times), "cpu": statistics.median(cpu),
              "parts": ddp.split.timings.per_step(),
              "bucket_allreduce": statistics.median(reduce_times),
              "gradient_bytes": ddp.split.gradient_bytes, "buckets": len(buckets),
              "plain_step": statistics.median(plain_times)}
    (out / f"{workload}.{world.size}.{world.rank}.json").write_text(json.dumps(record))


def _training_step(w: workloads.Workload, data: dict):
    """The workload's training step (impl_graphc's forward, softmax cross-entropy, SGD)."""
    import graphc as gc
    from benchmarks.impl_graphc import forward

    params = [gc.param(f"p{i}", v) for i, v in enumerate(w.params())]
    x = gc.input("x", data["x"].shape, "float32")
    y = gc.input("y", data["y"].shape, "int32")
    loss = gc.softmax_cross_entropy(forward(w, params, x), y)
    return gc.distributed.TrainingStep([x, y], loss,
                                       gc.optim.SGD(params, lr=workloads.LEARNING_RATE))


def _timed(call, steps: int, world, reset=None) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `steps` calls, after 3 untimed ones (compiling, warming)
    and a barrier."""
    for _ in range(3):
        call()
    world.barrier()
    if reset is not None:
        reset()
    wall, cpu = [], []
    for _ in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


# ----- the parent: launching, aggregating, the model -------------------------------------

def mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("benchmarks.ddp: mpiexec not found; pip install 'graphc[mpi]'")
    return found


def run(workload: str, processes: int, steps: int, directory: Path) -> dict:
    """One run: the records of every rank."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [mpiexec(), "-n", str(processes), sys.executable, "-m", "benchmarks.ddp",
               "--child", workload, "--steps", str(steps), "--out", str(directory)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"benchmarks.ddp: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return [json.loads((directory / f"{workload}.{processes}.{r}.json").read_text())
            for r in range(processes)]


def summarize(workload: str, runs: dict[int, list[list[dict]]]) -> dict:
    """Medians over the runs; per run, the slowest rank's median step (the step is
    synchronous: every rank waits for the slowest)."""
    out = {"workload": workload}
    for processes, per_run in runs.items():
        steps = [max(r["step"] for r in ranks) for ranks in per_run]
        first = per_run[0][0]
        parts = {k: statistics.median(statistics.mean(r["parts"][k] for r in ranks)
                                      for ranks in per_run) for k in first["parts"]}
        out[processes] = {
            "step": statistics.median(steps), "steps_all_runs": steps,
            "cpu": statistics.median(max(r["cpu"] for r in ranks) for ranks in per_run),
            "load": [ranks[0]["load"] for ranks in per_run],
            "samples_per_second": processes * first["batch"] / statistics.median(steps),
            "parts": parts,
            "bucket_allreduce": statistics.median(max(r["bucket_allreduce"] for r in ranks)
                                                  for ranks in per_run),
            "plain_step": statistics.median(max(r["plain_step"] for r in ranks)
                                            for ranks in per_run)}
        out["gradient_bytes"], out["batch"] = first["gradient_bytes"], first["batch"]
        out["buckets"] = first["buckets"]
    if 1 in out and 2 in out:
        out["efficiency"] = out[2]["samples_per_second"] / (2 * out[1]["samples_per_second"])
        out["machine_efficiency"] = out[1]["plain_step"] / out[2]["plain_step"]
        compute = out[1]["parts"]["gradient"] + out[1]["parts"]["update"]
        out["model"] = model(compute, out["gradient_bytes"], out["batch"])
    return out


def model(compute: float, gradient_bytes: int, batch: int) -> dict:
    """Samples/s and efficiency of N machines from the compute time of one step and a
    ring all-reduce of the gradients over links of each bandwidth."""
    table = {}
    for gbit in LINKS_GBIT:
        bandwidth = gbit * 1e9 / 8
        for n in MACHINES:
            comm = 2 * (n - 1) / n * gradient_bytes / bandwidth
            table[f"{gbit}Gbit/s x{n}"] = {
                "allreduce": comm, "samples_per_second": n * batch / (compute + comm),
                "efficiency": compute / (compute + comm)}
    return {"compute": compute, "table": table}


def report(summary: dict) -> str:
    w, one, two = summary["workload"], summary[1], summary[2]
    ms = 1e3
    lines = [f"{w}: batch {summary['batch']} per process, gradients "
             f"{summary['gradient_bytes'] / 1e6:.3f} MB in {summary['buckets']} bucket(s)",
             f"  plain step (one compiled function, no communication): {one['plain_step'] * ms:.2f}"
             f" ms alone, {two['plain_step'] * ms:.2f} ms with 2 processes running it at once "
             f"(the machine's own weak scaling: {summary['machine_efficiency'] * 100:.1f}%)"]
    for p, r in ((1, one), (2, two)):
        parts = ", ".join(f"{k} {v * ms:.2f} ms" for k, v in r["parts"].items()
                          if k != "compute_cpu")
        lines.append(f"  {p} process(es): step {r['step'] * ms:.2f} ms, "
                     f"{r['samples_per_second']:.1f} samples/s ({parts}); bucket all-reduce "
                     f"alone {r['bucket_allreduce'] * ms:.3f} ms")
    lines.append(f"  weak-scaling efficiency at 2 processes: {summary['efficiency'] * 100:.1f}%; "
                 f"CPU time of the compute (gradient + update) per step "
                 f"{one['parts']['compute_cpu'] * ms:.2f} ms at 1 process, "
                 f"{two['parts']['compute_cpu'] * ms:.2f} ms at 2 (1-minute load average at the "
                 "runs' start: "
                 f"{', '.join(f'{x:.1f}' for x in one['load'] + two['load'])})")
    m = summary["model"]
    lines.append(f"  model, N machines (compute {m['compute'] * ms:.2f} ms/step + ring "
                 "all-reduce 2(N-1)/N x bytes / bandwidth):")
    for gbit in LINKS_GBIT:
        cells = [f"N={n}: {m['table'][f'{gbit}Gbit/s x{n}']['samples_per_second']:.0f}/s "
                 f"({m['table'][f'{gbit}Gbit/s x{n}']['efficiency'] * 100:.0f}%)"
                 for n in MACHINES]
        lines.append(f"    {gbit:>3} Gbit/s: " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="lenet,transformer")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.steps, Path(args.out))
        return 0
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        raise SystemExit(f"benchmarks.ddp: unknown workloads {unknown}; have {sorted(WORKLOADS)}")
    summaries = []
    with tempfile.TemporaryDirectory(prefix="graphc-ddp-bench-") as tmp:
        for name in names:
            runs: dict[int, list] = {1: [], 2: []}
            for _ in range(args.repeat):
                for processes in (1, 2):
                    runs[processes].append(run(name, processes, args.steps, Path(tmp)))
            summary = summarize(name, runs)
            summaries.append(summary)
            print(report(summary), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
