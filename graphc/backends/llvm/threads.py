"""A persistent pool of worker threads that call the native entry together: ctypes
releases the GIL, so the threads run in parallel and meet at the entry's barriers.
(Starting a thread per call would cost milliseconds: the first native call of a new
thread is slow.)"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from queue import SimpleQueue


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class WorkerPool:
    """Runs fn(tid) for tid in 0..n-1: tid 0 in the caller's thread, the rest in workers."""

    def __init__(self):
        self._queues: list[SimpleQueue] = []
        self._done: SimpleQueue = SimpleQueue()
        self._lock = threading.Lock()

    def _grow(self, workers: int) -> None:
        while len(self._queues) < workers:
            queue: SimpleQueue = SimpleQueue()
            thread = threading.Thread(target=self._work, args=(queue,), daemon=True,
                                      name=f"graphc-worker-{len(self._queues) + 1}")
            self._queues.append(queue)
            thread.start()

    def _work(self, queue: SimpleQueue) -> None:
        while True:
            fn, tid = queue.get()
            try:
                fn(tid)
            finally:
                self._done.put(tid)

    def run(self, fn: Callable[[int], int], n: int) -> int:
        """fn(0)'s result, after every fn(tid) has returned."""
        if n <= 1:
            return fn(0)
        with self._lock:
            self._grow(n - 1)
            for tid in range(1, n):
                self._queues[tid - 1].put((fn, tid))
            try:
                return fn(0)
            finally:
                for _ in range(n - 1):
                    self._done.get()


POOL = WorkerPool()
