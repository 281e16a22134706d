"""Running the row blocks of a compiled program on several threads at once.

A row-wise inference plan (:mod:`.sample_rows`) can run as one call of the compiled
program per block of rows, each block on its own thread: the program is ``nogil``, so the
blocks run in parallel. :func:`run_blocks` runs the first job on the calling thread and
the others on persistent worker threads (started once, restarted in a forked child),
which wake in ~16 us where starting a thread would cost more.

While blocks run, the GEMMs inside them must stay on their own thread: NumPy's OpenBLAS
would otherwise run each on its thread pool too. Two threaded GEMMs at once take turns
on OpenBLAS's lock while its workers spin, and LeNet's batch of 128 measured 2.79 ms as
two blocks against 2.65 ms unsplit; with one BLAS thread per block, 1.66 ms. OpenBLAS's
thread count is process-wide, so it is set to 1 for the blocks and restored after
(:func:`.loop_blas.blas_threads`); a GEMM another thread of the process runs meanwhile
runs on one thread too, with the same result.

One caller at a time uses the workers: a second thread finding them busy gets None and
runs its program unsplit, as it would on one core.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, Callable, Optional

from .loop_blas import blas_threads

__all__ = ["run_blocks"]

_LOCK = threading.Lock()
_workers: list["_Worker"] = []
_pid = os.getpid()


class _Worker:
    """A daemon thread running the jobs put into ``tasks``; each result (or the
    exception raised) goes to ``results``."""

    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="graphc-block", daemon=True).start()

    def _loop(self) -> None:
        while True:
            job = self.tasks.get()
            try:
                self.results.put((job(), None))
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                self.results.put((None, err))


def run_blocks(jobs: list[Callable[[], Any]]) -> Optional[list]:
    """The results of ``jobs`` run at once, ``jobs[0]`` on this thread, with one BLAS
    thread each; None when another thread is running blocks (run unsplit then). An
    exception of a job is raised here, after every job has finished. Also None when the
    BLAS's thread count cannot be set (not NumPy's OpenBLAS): blocks would be slower."""
    global _pid
    if not _LOCK.acquire(blocking=False):
        return None
    try:
        previous = blas_threads(1)
        if previous is None:
            return None
        if _pid != os.getpid():  # a forked child has none of its parent's threads
            _workers.clear()
            _pid = os.getpid()
        while len(_workers) < len(jobs) - 1:
            _workers.append(_Worker())
        try:
            for worker, job in zip(_workers, jobs[1:]):
                worker.tasks.put(job)
            try:
                first = (jobs[0](), None)
            except BaseException as err:  # noqa: BLE001 - raised once the others are done
                first = (None, err)
            done = [first] + [w.results.get() for w in _workers[:len(jobs) - 1]]
        finally:
            blas_threads(previous)
    finally:
        _LOCK.release()
    for _result, err in done:
        if err is not None:
            raise err
    return [result for result, _err in done]
