"""`python -m benchmarks`: run the suite (see benchmarks.suite)."""

import sys

from benchmarks.suite import main

sys.exit(main())
