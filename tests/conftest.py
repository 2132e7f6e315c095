"""Suite-wide settings.

- gc.compile caps threads= at the CPUs this process may run on; the tests of uneven thread
  splits (3, 4 and 9 threads) must run as written on a 2-CPU machine, so the suite raises
  the cap (GRAPHC_MAX_THREADS, inherited by the subprocesses it starts).
- Every test compiles into a disk cache of its own session, never the user's ~/.cache
  (XDG_CACHE_HOME, inherited by subprocesses too); matplotlib keeps its config and font
  cache there too (MPLCONFIGDIR), not in ~/.config. Set when this file is imported, before
  any test module is: collecting one may already ask for the host's description, which
  graphc keeps in the cache."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("GRAPHC_MAX_THREADS", "16")

_PRIVATE = tempfile.mkdtemp(prefix="graphc-tests-")
atexit.register(shutil.rmtree, _PRIVATE, ignore_errors=True)
for _variable, _name in (("XDG_CACHE_HOME", "xdg-cache"), ("MPLCONFIGDIR", "matplotlib")):
    os.environ[_variable] = os.path.join(_PRIVATE, _name)
    os.makedirs(os.environ[_variable])
