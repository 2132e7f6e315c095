"""Faults from outside: a checkpoint writer killed mid-write leaves the previous checkpoint
intact and loadable."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from graphc import checkpoint

WRITER = textwrap.dedent("""
    import sys, numpy as np
    from graphc import checkpoint
    big = {"w": np.full(40_000_000, 7.0)}          # 320 MB: the write takes a while
    print("writing", flush=True)
    checkpoint.save(sys.argv[1], big)
    print("done", flush=True)
""")


def test_a_writer_killed_mid_write_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "model.npz"
    checkpoint.save(path, {"w": np.arange(5.0)})
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                              text=True)
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.3)  # mid-way through writing 320 MB
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL, "the writer finished before it was killed"
    np.testing.assert_array_equal(checkpoint.load(path)["w"], np.arange(5.0))
    leftovers = [name for name in os.listdir(tmp_path) if name != "model.npz"]
    assert all(name.startswith(".model.npz.") and name.endswith(".tmp") for name in leftovers)
    checkpoint.save(path, {"w": np.ones(3)})  # and the next save works
    np.testing.assert_array_equal(checkpoint.load(path)["w"], np.ones(3))
