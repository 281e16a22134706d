"""Shared benchmark plumbing: 2 threads for everyone, interleaved timing, the table.

Import this module before NumPy, Numba or PyTorch: it pins every thread pool to
:data:`THREADS` (Numba, OpenMP, BLAS) so graphc and its peers use the same 2 cores.
Times are medians over repeats after warm-up, with the spread given as the interquartile
range; graphc and the peer are timed in alternating rounds so that load from other
processes on a shared machine hits both alike.
"""

from __future__ import annotations

import os

# The setting is 2 threads each; GRAPHC_BENCH_THREADS=1 gives a comparison that
# stays meaningful on a machine whose cores are busy with other work (spinning BLAS and
# Numba workers suffer most from oversubscription).
THREADS = int(os.environ.get("GRAPHC_BENCH_THREADS", "2"))
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

__all__ = ["THREADS", "Result", "compare", "print_table", "torch_threads"]


@dataclass
class Result:
    """One benchmark row: per-call seconds of graphc and of the peer."""

    name: str
    peer: str
    ours: list[float]
    theirs: list[float]

    @property
    def ratio(self) -> float:
        """median(graphc) / median(peer): below 1 means graphc is faster."""
        return float(np.median(self.ours) / np.median(self.theirs))


def torch_threads() -> None:
    """Give PyTorch the same thread budget."""
    import torch

    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1) if hasattr(torch, "set_num_interop_threads") else None


def _time(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def compare(name: str, peer: str, ours: Callable[[], object], theirs: Callable[[], object],
            warmup: int = 10, rounds: int = 15, number: int = 10) -> Result:
    """Time both callables in alternating rounds of ``number`` calls each."""
    for _ in range(warmup):
        ours()
        theirs()
    a, b = [], []
    for _ in range(rounds):
        a.append(_time(ours, number))
        b.append(_time(theirs, number))
    return Result(name, peer, a, b)


def _fmt(ts: list[float]) -> str:
    q1, med, q3 = np.percentile(np.asarray(ts) * 1e3, [25, 50, 75])
    return f"{med:8.3f} ms (IQR {q1:.3f}-{q3:.3f})"


def print_table(rows: list[Result]) -> None:
    """The results as a plain-text table."""
    print(f"{'benchmark':38s} {'graphc':32s} {'peer':12s} {'peer time':32s} ratio")
    for r in rows:
        print(f"{r.name:38s} {_fmt(r.ours):32s} {r.peer:12s} {_fmt(r.theirs):32s} {r.ratio:5.2f}")
