"""`graphc viz`: run a script and draw every function it compiles, stage by stage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from graphc.cli.base import CommandError, command
from graphc.cli.scripts import recording_compiles, run_script, script_path

STAGES = ("forward", "backward", "optimized", "fused-before", "fused-after")


def stage_dot(executable, stage: str) -> str:
    """DOT text of one stage of a compiled function: "forward" (its outputs, before
    optimization), "backward" (outputs and update values, gradient nodes marked),
    "optimized" (what runs), or "fused-before"/"fused-after" (each fused kernel drawn as a
    cluster, on the graph fusion started from or on the graph that runs)."""
    from graphc.passes.report import fusion_dot
    from graphc.viz import to_dot

    if stage.startswith("fused-"):
        return fusion_dot(executable, stage.removeprefix("fused-"))
    if stage == "forward":
        return to_dot(list(executable.source.outputs), name="forward")
    program = executable.source if stage == "backward" else executable.program
    return to_dot(list(program.outputs), name=stage, updates=program.updates)


def _viz_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="a Python script that calls gc.compile")
    parser.add_argument("--stage", choices=(*STAGES, "all"), default="all",
                        help="which graph to draw (default: all of them)")
    parser.add_argument("--report", action="store_true",
                        help="also print each compiled function's optimization report")
    parser.add_argument("-o", "--output", default=None,
                        help="a directory for the files (default: the current directory); "
                             "with one graph to draw, may name the exact .dot/.svg/.png file")


def _output(output: str | None) -> tuple[Path, Path | None]:
    """The directory for the drawings and, if -o names a file, that file."""
    from graphc.viz import DOT_SUFFIXES, IMAGE_FORMATS, dot_program

    if output is None:
        return Path.cwd(), None
    out = Path(output)
    if out.suffix == "" or out.is_dir() or output.endswith(("/", "\\")):
        return out, None
    known = DOT_SUFFIXES + tuple("." + f for f in IMAGE_FORMATS)
    if out.suffix.lower() not in known:
        raise CommandError(f"-o {output}: a drawing is one of {', '.join(known)} (or give a "
                           "directory)")
    if out.suffix.lower() not in DOT_SUFFIXES and dot_program() is None:  # fail before running
        raise CommandError(f"-o {output}: writing a .{out.suffix[1:]} needs Graphviz's `dot` "
                           "program, which is not on PATH: install Graphviz or use -o FILE.dot")
    return out.parent, out


def _viz_targets(script: Path, count: int, stages: Sequence[str], directory: Path,
                 exact: Path | None) -> list[tuple[int, str, Path]]:
    """(function index, stage, file) of every drawing to write: `exact` when there is one
    drawing, else <script-stem>.<index>.<stage>.dot in `directory`."""
    if exact is not None and count * len(stages) == 1:
        return [(0, stages[0], exact)]
    return [(k, stage, directory / f"{script.stem}.{k}.{stage}.dot")
            for k in range(count) for stage in stages]


@command("viz", "draw the graphs a script compiles (forward, backward, optimized)",
         _viz_arguments)
def viz(args: argparse.Namespace) -> int:
    from graphc import viz as drawing

    script = script_path(args.script)
    directory, exact = _output(args.output)
    with recording_compiles() as compiled:
        run_script(script)
    if not compiled:
        print(f"graphc viz: {script.name} compiled nothing (it made no gc.compile call)",
              file=sys.stderr)
        return 1
    if args.report:
        for k, executable in enumerate(compiled):
            print(f"# function {k}: {executable!r}\n{executable.report()}")
    stages = STAGES if args.stage == "all" else (args.stage,)
    images = drawing.dot_program() is not None
    for k, stage, path in _viz_targets(script, len(compiled), stages, directory, exact):
        text = stage_dot(compiled[k], stage)
        paths = [path]
        if images and path.suffix.lower() in drawing.DOT_SUFFIXES:
            paths.append(path.with_suffix(".svg"))  # a picture beside the .dot
        for target in paths:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                drawing.write(text, target)
            except (OSError, RuntimeError) as exc:  # no Graphviz, dot failed, unwritable
                raise CommandError(str(exc)) from None
            print(target)
    if not images:
        print("graphc viz: Graphviz's dot is not installed, so only .dot files were written",
              file=sys.stderr)
    return 0
