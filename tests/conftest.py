"""Test-session setup: run the cuda target in Numba's CUDA simulator unless asked not to.

Numba reads ``NUMBA_ENABLE_CUDASIM`` once, when it is first imported, so it must be set
before any test module imports graphc (which imports numba). The normal run has no GPU and
uses the simulator (``-m cuda`` deselected); ``pytest -m cuda`` is the real-GPU run, which
must see the real driver, so the simulator is left off there. An explicit
``NUMBA_ENABLE_CUDASIM`` in the environment always wins.
"""

from __future__ import annotations

import os
import sys

import pytest


def _real_gpu_run(args: list[str]) -> bool:
    # The last -m wins (pyproject's addopts puts "not ... cuda" first).
    marks = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-m"]
    marks += [a[2:] for a in args if a.startswith("-m") and len(a) > 2]
    return bool(marks) and "cuda" in marks[-1] and "not cuda" not in marks[-1]


if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _real_gpu_run(sys.argv[1:]):
    if "numba" in sys.modules:  # imported already (a plugin): too late for the setting
        raise RuntimeError("tests/conftest.py: numba was imported before NUMBA_ENABLE_CUDASIM "
                           "could be set; set NUMBA_ENABLE_CUDASIM=1 in the environment")
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"


def _on_simulated_cuda(item) -> bool:  # noqa: ANN001 - a pytest item
    callspec = getattr(item, "callspec", None)
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and (
        item.module.__name__.startswith("test_numba_cuda")
        or (callspec is not None and callspec.params.get("target") == "cuda"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):  # noqa: ANN001, ANN201 - pytest's hook
    """The simulator runs each CUDA thread as a Python thread, and a block's threads wait
    for each other at every ``syncthreads`` (the GEMM's tiles): with Python's default 5 ms
    switch interval those hand-overs dominated (a small GEMM 2.6 s, 0.7 s at 0.1 ms). So
    simulated cuda tests run with the short interval; the others keep the default."""
    if not _on_simulated_cuda(item):
        yield
        return
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001 - pytest's hook
    """Tests parametrized over the built targets (``target="cuda"``) skip, with the reason,
    where neither a GPU nor the simulator can run them (NUMBA_ENABLE_CUDASIM=0, no GPU)."""
    on_cuda = [it for it in items
               if getattr(it, "callspec", None) and it.callspec.params.get("target") == "cuda"]
    if not on_cuda:
        return
    from graphc.bundle_run import gpu_available

    if not gpu_available():
        skip = pytest.mark.skip(reason="cuda target: no GPU available and the simulator is off "
                                       "(NUMBA_ENABLE_CUDASIM=1 runs it without a GPU)")
        for item in on_cuda:
            item.add_marker(skip)
