"""Suite-wide settings. gc.compile caps threads= at the CPUs this process may run on; the
tests of uneven thread splits (3, 4 and 9 threads) must run as written on a 2-CPU machine,
so the suite raises the cap (GRAPHC_MAX_THREADS, inherited by the subprocesses it starts)."""

import os

os.environ.setdefault("GRAPHC_MAX_THREADS", "16")
