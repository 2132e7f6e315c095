"""`python -m graphc.cli ARGS...`: the same as `graphc ARGS...`."""

import sys

from graphc.cli import main

sys.exit(main())
