"""`graphc viz`: run a script and draw every function it compiles, stage by stage, as DOT
files (with an SVG beside each where Graphviz is installed), or with --html as one HTML
graph explorer of them all (graphc/viz/html.py).

Graphviz can take minutes on a graph of a thousand edges: each picture gets at most
--timeout seconds, after which the DOT file is kept instead, the user is told, and the
other drawings go on (bigger graphs of the same run are not tried again)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from graphc.cli.base import CommandError, command
from graphc.cli.scripts import recording_compiles, run_script, script_path

STAGES = ("forward", "backward", "optimized", "fused-before", "fused-after")
DEFAULT_TIMEOUT = 60.0  # seconds Graphviz may take for one picture


def stage_dot(executable, stage: str) -> str:
    """DOT text of one stage of a compiled function: "forward" (its outputs, before
    optimization), "backward" (outputs and update values, gradient nodes marked),
    "optimized" (what runs), or "fused-before"/"fused-after" (each fused kernel drawn as a
    cluster, on the graph fusion started from or on the graph that runs). The graph is
    titled "<function name> <stage>"."""
    from graphc.passes.report import fusion_dot
    from graphc.viz import to_dot

    title = f"{executable.name} {stage}"
    if stage.startswith("fused-"):
        return fusion_dot(executable, stage.removeprefix("fused-"), name=title)
    if stage == "forward":
        return to_dot(list(executable.source.outputs), name=title)
    program = executable.source if stage == "backward" else executable.program
    return to_dot(list(program.outputs), name=title, updates=program.updates)


def _viz_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="a Python script that calls gc.compile (arguments for "
                                       "it go after a '--': graphc viz SCRIPT -- ARGS), or "
                                       "an .onnx model, drawn as graphc imports it")
    parser.add_argument("--stage", choices=(*STAGES, "all"), default="all",
                        help="which graph to draw (default: all of them)")
    parser.add_argument("--report", action="store_true",
                        help="also print each compiled function's optimization report")
    parser.add_argument("-o", "--output", default=None,
                        help="a directory for the files (default: the current directory), "
                             "or a .dot/.svg/.png/.pdf file: exactly that file for one "
                             "drawing, else its name with .<k>.<function>.<stage> inserted")
    parser.add_argument("--html", action="store_true",
                        help="write one self-contained HTML graph explorer of every function "
                             "and stage instead (-o FILE.html or a directory; default "
                             "<script>.html)")
    parser.add_argument("--profile", action="store_true",
                        help="with --html: profile each function the script called (with "
                             "its last call's arguments) and colour kernels by their time")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="the most Graphviz may take for one picture, after which the "
                             f".dot file is kept instead (default {DEFAULT_TIMEOUT:g})")


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


def drawing_name(stem: str, k: int, executable, stage: str, suffix: str) -> str:
    """<stem>.<k>.<function name>.<stage><suffix>: k tells apart functions of one name."""
    from graphc.ir.program import file_stem

    return f"{stem}.{k}.{file_stem(executable.name)}.{stage}{suffix}"


def _viz_targets(script: Path, compiled: Sequence, stages: Sequence[str], directory: Path,
                 exact: Path | None) -> list[tuple[int, str, Path]]:
    """(function index, stage, file) of every drawing to write: `exact` when there is one
    drawing; else, in `directory`, <script>.<k>.<function>.<stage>.dot, or with -o FILE
    the file's name with .<k>.<function>.<stage> inserted before its suffix."""
    if exact is not None and len(compiled) * len(stages) == 1:
        return [(0, stages[0], exact)]
    stem, suffix = (script.stem, ".dot") if exact is None else (exact.stem, exact.suffix)
    return [(k, stage, directory / drawing_name(stem, k, executable, stage, suffix))
            for k, executable in enumerate(compiled) for stage in stages]


@dataclass
class _Painter:
    """Writes each drawing's files and runs Graphviz for pictures, each for at most
    `timeout` seconds; after a timeout it keeps the DOT file, says so, and does not try a
    graph that large again."""

    timeout: float
    too_big: int | None = None  # the size of the smallest DOT text Graphviz timed out on

    def draw(self, text: str, path: Path) -> list[Path]:
        """Write `text` to `path` (a picture beside a .dot where Graphviz is installed);
        returns the files written."""
        from graphc import viz as drawing

        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in drawing.DOT_SUFFIXES:
            written = [drawing.write(text, path)]
            if drawing.dot_program() is not None:
                written += self._picture(text, path.with_suffix(".svg"), dot_file=path)
            return written
        return self._picture(text, path, dot_file=None)

    def _picture(self, text: str, path: Path, dot_file: Path | None) -> list[Path]:
        from graphc import viz as drawing

        if self.too_big is not None and len(text) >= self.too_big:
            reason = "Graphviz timed out on a graph as large earlier in this run"
        else:
            try:
                return [drawing.write(text, path, timeout=self.timeout)]
            except drawing.GraphvizTimeoutError:
                self.too_big = len(text) if self.too_big is None else min(self.too_big,
                                                                          len(text))
                reason = f"Graphviz's dot did not finish in {self.timeout:g} s"
        written = []
        if dot_file is None:
            dot_file = path.with_suffix(".dot")
            written.append(drawing.write(text, dot_file))
        print(f"graphc viz: no {path.name}: {reason}; wrote {dot_file} only (graphc viz --html "
              "draws graphs of any size; --timeout gives Graphviz longer)", file=sys.stderr)
        return written


def html_path(output: str | None, script: Path) -> Path:
    """Where `graphc viz --html` writes: -o FILE.html, or <script>.html in -o DIR (default:
    the current directory)."""
    if output is None:
        return Path.cwd() / f"{script.stem}.html"
    out = Path(output)
    if out.is_dir() or out.suffix == "" or output.endswith(("/", "\\")):
        return out / f"{script.stem}.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise CommandError(f"-o {output}: with --html, the file is a .html file (or give a "
                           "directory)")
    return out


def _explorer(script: Path, compiled: Sequence, path: Path, profile: bool) -> int:
    """Write the explorer of every compiled function to `path` (profiled: those called)."""
    from graphc.viz.html import explorer

    profiles = {}
    if profile:
        for k, executable in enumerate(compiled):
            if executable.last_arguments is None:
                print(f"graphc viz: function {k} ({executable.name}) was never called: not "
                      "profiled", file=sys.stderr)
                continue
            profiles[k] = executable.profile(*executable.last_arguments, calls=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_text(explorer(list(compiled), title=script.name, profiles=profiles),
                        encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc}") from None
    print(path)
    return 0


@command("viz", "draw the graphs a script compiles (forward, backward, optimized)",
         _viz_arguments, script_args=True)
def viz(args: argparse.Namespace) -> int:
    from graphc import viz as drawing

    script = script_path(args.script)
    if not args.timeout > 0:
        raise CommandError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.profile and not args.html:
        raise CommandError("--profile colours the HTML explorer: use it with --html")
    if args.html:
        if args.stage != "all":
            raise CommandError("--html draws every stage (choose one in the page): drop --stage")
        target = html_path(args.output, script)
    else:
        directory, exact = _output(args.output)
    if script.suffix.lower() == ".onnx":  # an ONNX model: the imported graph
        from graphc.cli.onnx import onnx_function

        compiled = [onnx_function(script)]
    else:
        with recording_compiles() as compiled:
            run_script(script, args.script_args)
    if not compiled:
        print(f"graphc viz: {script.name} compiled nothing (it made no gc.compile call)",
              file=sys.stderr)
        return 1
    if args.html:
        return _explorer(script, compiled, target, args.profile)
    if args.report:
        for k, executable in enumerate(compiled):
            print(f"# function {k}: {executable!r}\n{executable.report()}")
    stages = STAGES if args.stage == "all" else (args.stage,)
    targets = _viz_targets(script, compiled, stages, directory, exact)
    painter = _Painter(args.timeout)
    for k, stage, path in targets:
        try:
            for written in painter.draw(stage_dot(compiled[k], stage), path):
                print(written)
        except (OSError, RuntimeError) as exc:  # no Graphviz, dot failed, unwritable
            raise CommandError(str(exc)) from None
    if exact is not None and len(targets) > 1:
        print(f"graphc viz: -o {exact} names one file, but there are {len(targets)} drawings "
              f"({len(compiled)} function(s) x {len(stages)} stage(s)): wrote each as "
              f"{exact.stem}.<k>.<function>.<stage>{exact.suffix} in {directory} (listed "
              "above)", file=sys.stderr)
    if drawing.dot_program() is None:
        print("graphc viz: Graphviz's dot is not installed, so only .dot files were written",
              file=sys.stderr)
    return 0
