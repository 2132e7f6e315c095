"""The graphc command: `main([...])` in-process on small scripts in tmp_path, and once as
`python -m graphc.cli` to prove the entry point. Images use a fake `dot` put on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import llvmlite
import numpy as np
import pydot
import pytest
import sympy

import graphc
from graphc import compiler
from graphc.cli import main, recording_compiles

# pydot's parser calls pyparsing names that pyparsing 3.3 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:'[a-zA-Z]+' deprecated - use")

STEP = """
import numpy as np
import graphc as gc

x = gc.input("x", ("N", 3))
W = gc.param("W", np.ones((3, 2), np.float32))
loss = gc.mean(gc.tanh(x @ W))
(gW,) = gc.grad(loss, [W])
step = gc.compile([x], [loss], updates={W: W - 0.1 * gW}, backend="numpy")
step(np.ones((4, 3), np.float32))
"""

TWO_FUNCTIONS = STEP + """
predict = gc.compile([x], x @ W, backend="numpy")
"""


def script(tmp_path, body: str, name: str = "model.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def labels(path) -> list[str]:
    """The node labels of a DOT file, as Graphviz shows them."""
    (graph,) = pydot.graph_from_dot_file(str(path))
    nodes = [n for n in graph.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    return [n.get_label().strip('"').replace("\\n", "\n") for n in nodes]


def output_labels(path) -> list[str]:
    (graph,) = pydot.graph_from_dot_file(str(path))
    return [n.get_label().strip('"').replace("\\n", "\n") for n in graph.get_nodes()
            if n.get("peripheries") == '"2"']


def fake_dot(directory) -> str:
    """A `dot` that writes "FAKE-DOT -T<format>" and its input to the -o file; returns the
    directory to put on PATH."""
    directory.mkdir(exist_ok=True)
    path = directory / "dot"
    path.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        args = sys.argv[1:]
        text = sys.stdin.read()
        with open(args[args.index("-o") + 1], "w", encoding="utf-8") as out:
            out.write("FAKE-DOT " + args[0] + "\\n" + text)
        """), encoding="utf-8")
    path.chmod(0o755)
    return str(directory)


@pytest.fixture
def no_graphviz(tmp_path, monkeypatch):
    """A PATH on which there is no `dot`."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))


# ----- graphc viz ---------------------------------------------------------------------------

def test_viz_writes_forward_backward_and_optimized_graphs(tmp_path, capsys, no_graphviz):
    path = script(tmp_path, STEP)
    out = tmp_path / "drawings"
    with recording_compiles() as compiled:
        assert main(["viz", str(path), "-o", str(out)]) == 0
    (step,) = compiled
    files = [out / f"model.0.mean_step.{stage}.dot"
             for stage in ("forward", "backward", "optimized", "fused-before", "fused-after")]
    captured = capsys.readouterr()
    assert captured.out.split() == [str(f) for f in files]
    assert "dot is not installed" in captured.err
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in files)

    forward, backward, optimized, _, _ = (labels(f) for f in files)
    assert sorted(forward) == sorted(["input x\n(N, 3) float32", "param W\n(3, 2) float32",
                                      "matmul\n(N, 2) float32", "tanh\n(N, 2) float32",
                                      "mean\n() float32"])
    assert output_labels(files[0]) == ["mean\n() float32"]
    assert not any("∇" in label for label in forward)
    grads = [label for label in backward if label.startswith("∇ ")]
    assert "∇ matmul\n(3, 2) float32" in grads
    assert set(forward) < set(backward)
    assert any(label.endswith("\n→ W") for label in backward)
    assert len(optimized) == len(step.program.graph)


def test_viz_report_and_fused_kernels_as_clusters(tmp_path, capsys, no_graphviz):
    path = script(tmp_path, STEP)
    assert main(["viz", str(path), "--report", "--stage", "fused-after", "-o",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "# function 0" in out and "kernels left:" in out and "fusion" in out
    (graph,) = pydot.graph_from_dot_file(str(tmp_path / "model.0.mean_step.fused-after.dot"))
    titles = [g.get_label() for g in graph.get_subgraphs()]
    assert titles and all("fused" in t for t in titles)


def test_viz_numbers_each_compiled_function(tmp_path, capsys, no_graphviz):
    path = script(tmp_path, TWO_FUNCTIONS)
    assert main(["viz", str(path), "--stage", "forward", "-o", str(tmp_path)]) == 0
    first = tmp_path / "model.0.mean_step.forward.dot"
    second = tmp_path / "model.1.matmul.forward.dot"
    assert capsys.readouterr().out.split() == [str(first), str(second)]
    assert output_labels(first) == ["mean\n() float32"]
    assert output_labels(second) == ["matmul\n(N, 2) float32"]


def test_viz_writes_to_the_current_directory_by_default(tmp_path, monkeypatch, no_graphviz):
    path = script(tmp_path, STEP)
    monkeypatch.chdir(tmp_path / "empty")
    assert main(["viz", str(path), "--stage", "optimized"]) == 0
    assert os.listdir(tmp_path / "empty") == ["model.0.mean_step.optimized.dot"]


def test_viz_with_one_graph_writes_the_exact_file_asked_for(tmp_path, capsys, no_graphviz):
    path = script(tmp_path, STEP)
    target = tmp_path / "sub" / "step.dot"
    assert main(["viz", str(path), "--stage", "backward", "-o", str(target)]) == 0
    assert capsys.readouterr().out.split() == [str(target)]
    assert os.listdir(tmp_path / "sub") == ["step.dot"]
    assert any(label.startswith("∇ ") for label in labels(target))


def test_viz_svg_goes_through_dot(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", fake_dot(tmp_path / "bin"))
    path = script(tmp_path, STEP)
    target = tmp_path / "step.svg"
    assert main(["viz", str(path), "--stage", "forward", "-o", str(target)]) == 0
    assert capsys.readouterr().out.split() == [str(target)]
    head, text = target.read_text(encoding="utf-8").split("\n", 1)
    assert head == "FAKE-DOT -Tsvg"
    assert pydot.graph_from_dot_data(text)[0].get_name() == '"mean_step forward"'


def test_viz_writes_an_svg_beside_each_dot_where_dot_exists(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", fake_dot(tmp_path / "bin"))
    path = script(tmp_path, TWO_FUNCTIONS)
    out = tmp_path / "out"
    assert main(["viz", str(path), "--stage", "backward", "-o", str(out)]) == 0
    names = ["model.0.mean_step.backward.dot", "model.0.mean_step.backward.svg",
             "model.1.matmul.backward.dot", "model.1.matmul.backward.svg"]
    assert capsys.readouterr().out.split() == [str(out / n) for n in names]
    for k, name in enumerate(["mean_step", "matmul"]):
        dot_text = (out / f"model.{k}.{name}.backward.dot").read_text(encoding="utf-8")
        svg = (out / f"model.{k}.{name}.backward.svg").read_text(encoding="utf-8")
        assert svg == "FAKE-DOT -Tsvg\n" + dot_text


def test_viz_with_o_file_and_several_drawings_says_what_it_wrote(tmp_path, capsys,
                                                                  no_graphviz):
    path = script(tmp_path, TWO_FUNCTIONS)
    assert main(["viz", str(path), "--stage", "forward", "-o", str(tmp_path / "g.dot")]) == 0
    captured = capsys.readouterr()
    written = [tmp_path / "g.0.mean_step.forward.dot", tmp_path / "g.1.matmul.forward.dot"]
    assert captured.out.split() == [str(p) for p in written]
    assert all(p.read_text().startswith("digraph") for p in written)
    assert not (tmp_path / "g.dot").exists()
    assert f"graphc viz: -o {tmp_path / 'g.dot'} names one file, but there are 2 drawings " \
           f"(2 function(s) x 1 stage(s)): wrote each as g.<k>.<function>.<stage>.dot in " \
           f"{tmp_path}" in captured.err


def test_viz_passes_the_arguments_after_a_double_dash_to_the_script(tmp_path, capsys,
                                                                    no_graphviz):
    path = script(tmp_path, "import sys\nprint('argv', sys.argv[1:])\n" + STEP)
    assert main(["viz", str(path), "--stage", "forward", "-o", str(tmp_path), "--",
                 "--epochs", "2", "--stage", "x"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "argv ['--epochs', '2', '--stage', 'x']"
    assert out[1:] == [str(tmp_path / "model.0.mean_step.forward.dot")]


def slow_dot_for_gradients(directory) -> str:
    """A `dot` that hangs on graphs with gradient nodes and draws the others at once."""
    directory.mkdir(exist_ok=True)
    path = directory / "dot"
    path.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys, time
        args = sys.argv[1:]
        text = sys.stdin.read()
        if "∇" in text:
            time.sleep(120)
        with open(args[args.index("-o") + 1], "w", encoding="utf-8") as out:
            out.write("FAKE-DOT\\n")
        """), encoding="utf-8")
    path.chmod(0o755)
    return str(directory)


def test_viz_keeps_the_dot_file_when_graphviz_times_out_and_goes_on(tmp_path, monkeypatch,
                                                                    capsys):
    """As on the transformer example, where dot did not finish in 300 s: the DOT file is
    kept, the user told, and the other functions are still drawn."""
    monkeypatch.setenv("PATH", slow_dot_for_gradients(tmp_path / "bin"))
    path = script(tmp_path, TWO_FUNCTIONS)
    out = tmp_path / "out"
    assert main(["viz", str(path), "--stage", "backward", "-o", str(out), "--timeout",
                 "4"]) == 0
    captured = capsys.readouterr()
    names = ["model.0.mean_step.backward.dot", "model.1.matmul.backward.dot",
             "model.1.matmul.backward.svg"]
    assert captured.out.split() == [str(out / n) for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert f"graphc viz: no model.0.mean_step.backward.svg: Graphviz's dot did not finish " \
           f"in 4 s; wrote {out / names[0]} only" in captured.err


def test_viz_with_an_image_file_falls_back_to_dot_on_a_timeout(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", slow_dot_for_gradients(tmp_path / "bin"))
    path = script(tmp_path, STEP)
    assert main(["viz", str(path), "--stage", "backward", "-o", str(tmp_path / "step.svg"),
                 "--timeout", "4"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [str(tmp_path / "step.dot")]
    assert (tmp_path / "step.dot").read_text().startswith('digraph "mean_step backward"')
    assert not (tmp_path / "step.svg").exists()
    assert "no step.svg: Graphviz's dot did not finish in 4 s" in captured.err


def test_viz_refuses_a_timeout_that_is_not_positive(tmp_path, capsys):
    path = script(tmp_path, STEP)
    assert main(["viz", str(path), "--timeout", "0"]) == 2
    assert "--timeout must be a positive number of seconds, got 0.0" in capsys.readouterr().err


def test_viz_svg_without_graphviz_fails_before_running_the_script(tmp_path, capsys,
                                                                  no_graphviz):
    path = script(tmp_path, STEP + "\nopen(__file__ + '.ran', 'w').close()\n")
    assert main(["viz", str(path), "-o", str(tmp_path / "g.svg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphc: error: -o ")
    assert "install Graphviz or use -o FILE.dot" in err
    assert not (tmp_path / "model.py.ran").exists()


def test_viz_refuses_an_output_file_it_cannot_write(tmp_path, capsys, no_graphviz):
    path = script(tmp_path, STEP)
    assert main(["viz", str(path), "-o", str(tmp_path / "g.txt")]) == 2
    assert "a drawing is one of .dot, .gv, .svg, .png, .pdf" in capsys.readouterr().err


def test_viz_of_a_script_that_compiles_nothing_exits_1(tmp_path, capsys):
    path = script(tmp_path, "print('hello')\n")
    assert main(["viz", str(path), "-o", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "hello\n"
    assert "model.py compiled nothing" in captured.err
    assert not (tmp_path / "out").exists()


def test_a_missing_script_is_a_one_line_error(tmp_path, capsys):
    assert main(["viz", str(tmp_path / "nope.py")]) == 2
    assert capsys.readouterr().err == f"graphc: error: no such script: {tmp_path / 'nope.py'}\n"


def test_a_failing_script_shows_its_own_traceback_only(tmp_path, capsys):
    before = list(compiler._recorders)
    path = script(tmp_path, "import graphc\n\ndef f():\n    raise ValueError('boom')\n\nf()\n")
    assert main(["viz", str(path)]) == 1
    err = capsys.readouterr().err
    assert f'File "{path}", line 6, in <module>' in err
    assert f'File "{path}", line 4, in f' in err
    assert "ValueError: boom" in err
    assert "graphc/cli" not in err and "runpy" not in err
    assert err.endswith("graphc: error: model.py raised ValueError\n")
    assert [id(r) for r in compiler._recorders] == [id(r) for r in before]


def test_a_script_with_a_syntax_error_is_reported(tmp_path, capsys):
    path = script(tmp_path, "x = (\n")
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert "SyntaxError" in err and "model.py" in err and "graphc/cli" not in err


# ----- graphc run ---------------------------------------------------------------------------

def test_run_runs_the_script_as_main_with_its_arguments(tmp_path, capsys):
    script(tmp_path, "VALUE = 42\n", name="helper_mod_for_cli_test.py")
    path = script(tmp_path, """
        import sys
        from helper_mod_for_cli_test import VALUE
        print(__name__, sys.argv, VALUE)
    """)
    argv, path_entries = list(sys.argv), list(sys.path)
    try:
        assert main(["run", str(path), "--epochs", "3", "data"]) == 0
    finally:
        sys.modules.pop("helper_mod_for_cli_test", None)
    assert capsys.readouterr().out == f"__main__ {[str(path), '--epochs', '3', 'data']} 42\n"
    assert sys.argv == argv and sys.path == path_entries


@pytest.mark.parametrize(("body", "status", "message"), [
    ("import sys\nsys.exit(3)\n", 3, ""),
    ("import sys\nsys.exit(0)\n", 0, ""),
    ("import sys\nsys.exit()\n", 0, ""),
    ("import sys\nsys.exit('bad data')\n", 1, "bad data\n"),
])
def test_run_passes_on_the_scripts_exit_status(tmp_path, capsys, body, status, message):
    path = script(tmp_path, body)
    assert main(["run", str(path)]) == status
    assert capsys.readouterr().err == message


# ----- graphc info, help ----------------------------------------------------------------------

def test_info_reports_versions_and_the_host_cpu(capsys):
    import llvmlite.binding as llvm

    assert main(["info"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["graphc"] == graphc.__version__
    assert lines["numpy"] == np.__version__
    assert lines["sympy"] == sympy.__version__
    assert lines["llvmlite"] == llvmlite.__version__
    assert lines["LLVM"] == ".".join(str(v) for v in llvm.llvm_version_info)
    assert lines["cpu"].split()[0] == llvm.get_host_cpu_name()
    enabled = {f[1:] for f in llvm.get_host_cpu_features().flatten().split(",")
               if f.startswith("+")}
    assert set(lines["features"].split()) == enabled
    from graphc.backends.llvm.runtime import cache as disk
    assert lines["cache"].startswith(f"{disk.directory()}: ")
    assert "entries" in lines["cache"] and "MB" in lines["cache"]


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("viz", "run", "info"):
        assert f"\n    {name} " in out


def test_no_subcommand_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "usage: graphc" in capsys.readouterr().err


def test_an_unknown_stage_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["viz", "x.py", "--stage", "sideways"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err


# ----- the entry point, as a separate process ------------------------------------------------

def test_python_m_graphc_cli_works_as_a_program(tmp_path):
    path = script(tmp_path, STEP)
    bad = script(tmp_path, "raise RuntimeError('from the script')\n", name="bad.py")
    env = {**os.environ, "PATH": str(tmp_path)}  # no dot here: .dot files only
    done = subprocess.run([sys.executable, "-m", "graphc.cli", "viz", str(path), "--stage",
                           "forward", "-o", "out"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [os.path.join("out", "model.0.mean_step.forward.dot")]
    assert "mean\n() float32" in labels(tmp_path / "out" / "model.0.mean_step.forward.dot")

    failed = subprocess.run([sys.executable, "-m", "graphc.cli", "run", str(bad)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert "RuntimeError: from the script" in failed.stderr
    assert "graphc/cli" not in failed.stderr
