"""Copying an NCHW tensor into a padded buffer, for the compiled program's window ops.

The step-by-step convolution keeps its padded input in a scratch buffer whose border is
zeroed once (:class:`.kernels.Scratch`), and max pooling pads with ``np.pad``. A
compiled program's workspace is shared by nothing else but is not known to be fresh, so
:func:`pad_into` writes the border at every run: a few rows and columns per plane, small
next to the copy itself.
"""

from __future__ import annotations

import numba

__all__ = ["pad_into"]


@numba.njit(cache=True, nogil=True)
def pad_into(x, xp, pt, pl, fill):  # pragma: no cover - compiled
    """``xp[:, :, pt:pt + H, pl:pl + W] = x`` (N, C, H, W), every other cell of ``xp``
    set to ``fill`` (0 for convolution, -inf for max pooling)."""
    n_, c_, h, w = x.shape
    hp, wp = xp.shape[2], xp.shape[3]
    for n in range(n_):
        for c in range(c_):
            for i in range(hp):
                dst = xp[n, c, i]
                if i < pt or i >= pt + h:
                    for j in range(wp):
                        dst[j] = fill
                    continue
                src = x[n, c, i - pt]
                for j in range(pl):
                    dst[j] = fill
                out = dst[pl:]
                for j in range(w):
                    out[j] = src[j]
                for j in range(pl + w, wp):
                    dst[j] = fill
