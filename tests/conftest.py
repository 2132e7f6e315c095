"""Suite-wide settings.

- gc.compile caps threads= at the CPUs this process may run on; the tests of uneven thread
  splits (3, 4 and 9 threads) must run as written on a 2-CPU machine, so the suite raises
  the cap (GRAPHC_MAX_THREADS, inherited by the subprocesses it starts).
- Every test compiles into a disk cache of its own session, never the user's ~/.cache
  (XDG_CACHE_HOME, inherited by subprocesses too); matplotlib keeps its config and font
  cache there too (MPLCONFIGDIR), not in ~/.config."""

import os

import pytest

os.environ.setdefault("GRAPHC_MAX_THREADS", "16")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    mp.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("matplotlib")))
    yield
    mp.undo()
