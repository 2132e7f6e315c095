"""`graphc tune`: measure the GEMM's blockings on this machine for a target and keep the
best in the disk cache (graphc/tune.py); later compiles for that target use them."""

from __future__ import annotations

import argparse

from graphc.cli.base import CommandError, command


def _tune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=None,
                        help="the target to tune: host (default: $GRAPHC_TARGET or host), "
                             "x86-64-v2, x86-64-v3, x86-64-v4 or an LLVM CPU name; it must "
                             "run on this CPU")


@command("tune", "measure the GEMM's register and cache blockings on this machine and keep "
         "the best for later compiles (seconds)", _tune_arguments)
def tune(args: argparse.Namespace) -> int:
    import dataclasses

    from graphc import tune as tuner
    from graphc.backends.llvm.runtime import cache, target

    if not cache.enabled():
        raise CommandError("graphc tune stores its result in the compiled-code cache, which "
                           "GRAPHC_CACHE turns off")
    try:
        chosen = target.resolve(args.target or target.default_name())
        trials = tuner.tune(dataclasses.replace(chosen, tuning=target.Tuning()))
    except (TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    print(tuner.report(chosen, trials))
    return 0


def target_lines() -> list[str]:
    """`graphc info`'s lines on the target: what it is, its register tile and blocks,
    whether they were tuned."""
    from graphc.backends.llvm.gemm import blocking
    from graphc.backends.llvm.runtime import target

    chosen = target.resolve(target.default_name())
    with target.using(chosen):
        tile = (f"GEMM tile {blocking.mr()} x {blocking.nr('float32')} float32, depth block "
                f"{blocking.depth_block()}, row block {blocking.row_block()}")
    tuned = chosen.tuning.to_json()
    origin = f"tuned: {tuned}" if tuned != "{}" else "analytical; graphc tune measures"
    return [f"target      {chosen.describe()}", f"blocking    {tile} ({origin})"]

