"""Shared benchmark plumbing: 2 threads for everyone, each side in its own process, the table.

Import this module before NumPy, Numba or PyTorch: it pins every thread pool to
:data:`THREADS` (Numba, OpenMP, BLAS) so graphc and its peers use the same 2 cores.

Each side of a comparison runs in a process of its own (:func:`run_cases`): thread pools
that outlive a call (OpenBLAS and OpenMP workers spin for a while after each one) would
otherwise slow whichever side runs next, and did so by up to 3x on the 2-core machine.
The two sides alternate (graphc, peer, graphc, peer) so that load from other processes on
a shared machine hits both alike. Times are medians over rounds after warm-up, with the
spread given as the interquartile range.
"""

from __future__ import annotations

import os

# The setting is 2 threads each; GRAPHC_BENCH_THREADS=1 gives a comparison that
# stays meaningful on a machine whose cores are busy with other work (spinning BLAS and
# Numba workers suffer most from oversubscription).
THREADS = int(os.environ.get("GRAPHC_BENCH_THREADS", "2"))
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

__all__ = ["THREADS", "Case", "Result", "peer", "print_table", "run_cases", "target",
           "torch_device", "torch_threads"]

TARGETS = ("cpu", "cuda")


def target() -> str:
    """The graphc target measured: ``cpu``, or ``cuda`` (``--target cuda``: the PyTorch peer
    then runs on the GPU too). Children inherit it from the parent's environment."""
    return os.environ.get("GRAPHC_BENCH_TARGET", "cpu")


def torch_device() -> str:
    """Where the PyTorch peer runs: the GPU when graphc's target is cuda."""
    return "cuda" if target() == "cuda" else "cpu"


def peer(name: str) -> str:
    """A peer's name in the table, marked when it runs on the GPU."""
    return f"{name}-cuda" if target() == "cuda" else name


def _take_target(argv: list[str]) -> list[str]:
    """Remove ``--target T`` from ``argv`` into the environment; refuse a cuda run without a
    GPU (for graphc or for PyTorch) with one clear line."""
    if "--target" not in argv:
        return argv
    i = argv.index("--target")
    name = argv[i + 1] if i + 1 < len(argv) else ""
    if name not in TARGETS:
        sys.exit(f"--target must be one of {', '.join(TARGETS)}, got {name!r}")
    if name == "cuda":
        import torch

        from graphc.bundle_run import gpu_available

        if not gpu_available() or not torch.cuda.is_available():
            sys.exit("--target cuda needs a CUDA GPU usable by both graphc (Numba) and "
                     "PyTorch; none is here")
    os.environ["GRAPHC_BENCH_TARGET"] = name
    return argv[:i] + argv[i + 2:]


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


@dataclass
class Case:
    """One comparison: ``ours`` and ``theirs`` each build (in their own process) the
    callable to time, one call being one step or one inference."""

    name: str
    peer: str
    ours: Callable[[], Callable[[], object]]
    theirs: Callable[[], Callable[[], object]]
    warmup: int = 10
    rounds: int = 16
    number: int = 10


def _child_times(case: Case, side: str) -> list[float]:
    fn = (case.ours if side == "ours" else case.theirs)()
    for _ in range(case.warmup):
        fn()
    return [_time(fn, case.number) for _ in range(case.rounds // 2)]


def _run_side(script: str, key: str, side: str) -> list[float]:
    out = subprocess.run([sys.executable, script, "--child", key, side], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{key} ({side}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cases(cases: dict[str, Callable[[], Case]], argv: list[str]) -> list[Result]:
    """The command line of a benchmark script: ``[names...]`` runs those cases (all by
    default) and prints the table; ``--child NAME SIDE`` is one side's process."""
    if argv[:1] == ["--child"]:
        print(json.dumps(_child_times(cases[argv[1]](), argv[2])))
        return []
    argv = _take_target(argv)
    script = os.path.abspath(sys.argv[0])
    rows = []
    for key in argv or list(cases):
        case = cases[key]()
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(2):
            ours += _run_side(script, key, "ours")
            theirs += _run_side(script, key, "theirs")
        rows.append(Result(case.name, case.peer, ours, theirs))
        print_table(rows[-1:])
    print()
    print_table(rows)
    return rows


def _fmt(ts: list[float]) -> str:
    q1, med, q3 = np.percentile(np.asarray(ts) * 1e3, [25, 50, 75])
    return f"{med:8.3f} ms (IQR {q1:.3f}-{q3:.3f})"


def print_table(rows: list[Result]) -> None:
    """The results as a plain-text table."""
    print(f"{'benchmark':38s} {'graphc':32s} {'peer':12s} {'peer time':32s} ratio")
    for r in rows:
        print(f"{r.name:38s} {_fmt(r.ours):32s} {r.peer:12s} {_fmt(r.theirs):32s} {r.ratio:5.2f}")
