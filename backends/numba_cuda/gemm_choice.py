"""Which GEMM runs each matmul shape: the tiled Numba kernel or cuBLAS, whichever is faster.

cuBLAS is reached through CuPy when it is installed (the optional ``cuda`` extra): CuPy
wraps Numba's device arrays without copying them (both speak the CUDA array interface)
and ``cupy.matmul`` calls cuBLAS's batched GEMM. Neither wins everywhere: cuBLAS on big
shapes, the tiled kernel can on tiny ones, where cuBLAS's launch overhead dominates. So the
first call with a new (shapes, dtype, transposes) times every candidate on the device
(CUDA events, after a warm-up call that compiles) and remembers the fastest for that key.
A candidate that fails is dropped with a warning; the tiled kernel always remains.

CuPy is imported on the first GEMM, not with graphc, and never under the simulator.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

from graphc.errors import first_line

from .device import cuda, simulated

__all__ = ["FastestGemm", "cublas_gemms", "gpu_milliseconds"]

Gemm = Callable[[Any, Any, Any, bool, bool], None]


def cublas_gemms() -> dict[str, Gemm]:
    """``{"cublas": gemm}`` when CuPy imports on a real GPU, else ``{}``."""
    if simulated():
        return {}
    try:
        import cupy
    except ImportError:
        return {}
    except Exception as err:  # noqa: BLE001 - a broken CUDA install must not stop graphc
        warnings.warn(f"CuPy is installed but does not import ({first_line(err)}); "
                      "matmul uses the tiled kernel only", RuntimeWarning, stacklevel=2)
        return {}

    def cublas_gemm(a: Any, b: Any, out: Any, ta: bool, tb: bool) -> None:
        x, y = cupy.asarray(a), cupy.asarray(b)  # views of the same device memory
        cupy.matmul(x.swapaxes(1, 2) if ta else x, y.swapaxes(1, 2) if tb else y,
                    out=cupy.asarray(out))
    return {"cublas": cublas_gemm}


def gpu_milliseconds(run: Callable[[], None], repeats: int = 3) -> float:
    """Device time of one ``run()``: the mean of ``repeats`` after a warm-up call."""
    run()
    start, end = cuda.event(), cuda.event()
    start.record()
    for _ in range(repeats):
        run()
    end.record()
    end.synchronize()
    return cuda.event_elapsed_time(start, end) / repeats


class FastestGemm:
    """``gemm(a, b, out, ta, tb)`` on 3-D device arrays by the fastest candidate per key.

    ``tiled`` is the fallback every key can use; ``extra`` gives the other candidates (a
    callable, so CuPy is only imported when the first GEMM runs); ``timer`` measures one
    candidate's call (tests pass a fake one)."""

    def __init__(self, tiled: Gemm, extra: Callable[[], dict[str, Gemm]] = cublas_gemms,
                 timer: Callable[[Callable[[], None]], float] = gpu_milliseconds) -> None:
        self._tiled, self._extra, self._timer = tiled, extra, timer
        self._candidates: Optional[dict[str, Gemm]] = None
        self.choice: dict[tuple, str] = {}  # key -> the name of the fastest candidate

    def candidates(self) -> dict[str, Gemm]:
        """Every usable GEMM by name, ``tiled`` first."""
        if self._candidates is None:
            self._candidates = {"tiled": self._tiled, **self._extra()}
        return self._candidates

    def __call__(self, a: Any, b: Any, out: Any, ta: bool, tb: bool) -> None:
        key = (tuple(a.shape), tuple(b.shape), str(out.dtype), ta, tb)
        name = self.choice.get(key)
        if name is None:
            name = self.choice[key] = self._fastest(a, b, out, ta, tb)
        self.candidates()[name](a, b, out, ta, tb)

    def _fastest(self, a: Any, b: Any, out: Any, ta: bool, tb: bool) -> str:
        candidates = self.candidates()
        if len(candidates) == 1:
            return "tiled"
        times = {}
        for name, gemm in list(candidates.items()):
            try:
                times[name] = self._timer(lambda: gemm(a, b, out, ta, tb))
            except Exception as err:  # noqa: BLE001 - a failing library is skipped, not fatal
                if name == "tiled":
                    raise
                del candidates[name]
                warnings.warn(f"graphc cuda: the {name} GEMM failed ({first_line(err)}); "
                              "matmul uses the tiled kernel", RuntimeWarning, stacklevel=3)
        return min(times, key=times.__getitem__)
