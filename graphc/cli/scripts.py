"""Running the user's script as `python SCRIPT ARGS...` would, and recording the functions
it compiles (and the arguments of their last calls)."""

from __future__ import annotations

import contextlib
import runpy
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from graphc.cli.base import CommandError, ScriptFailed


def script_path(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise CommandError(f"no such script: {text}")
    return path.resolve()


@contextlib.contextmanager
def _as_main(script: Path, args: Sequence[str]) -> Iterator[None]:
    """sys.argv and sys.path[0] as `python SCRIPT ARGS...` would set them, restored after."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(script.parent))
    try:
        yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


def run_script(script: Path, args: Sequence[str] = ()) -> None:
    """Run `script` as __main__; if it raises, print its traceback (without our frames) and
    raise ScriptFailed; a nonzero sys.exit of the script raises ScriptFailed too."""
    with _as_main(script, args):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            status = _exit_status(exc.code)
            if status != 0:
                raise ScriptFailed(status) from None
        except KeyboardInterrupt:
            raise ScriptFailed(130) from None
        except Exception as exc:  # the script's own error: show it as Python would
            tb = exc.__traceback__
            while tb is not None and Path(tb.tb_frame.f_code.co_filename) != script:
                tb = tb.tb_next
            traceback.print_exception(type(exc), exc, tb)
            print(f"graphc: error: {script.name} raised {type(exc).__name__}",
                  file=sys.stderr)
            raise ScriptFailed(1) from None


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message") prints the message, exits with 1
    return 1


@contextlib.contextmanager
def recording_compiles() -> Iterator[list]:
    """A list that receives every Executable that gc.compile builds inside the block."""
    from graphc import compiler

    recorder: list = []
    compiler._recorders.append(recorder)
    try:
        yield recorder
    finally:
        for k, item in enumerate(compiler._recorders):
            if item is recorder:  # by identity: == would match any other empty recorder
                del compiler._recorders[k]
                break
