"""``gc.datasets``: small classic datasets as NumPy arrays, read from files (never pickle).

* :func:`load_digits` — scikit-learn's 8x8 handwritten digits (1797 images, bundled with
  scikit-learn: ``pip install scikit-learn`` or ``pip install 'graphc[examples]'``);
* :func:`load_mnist` / :func:`load_fashion_mnist` — the standard IDX files (gzipped or not)
  in a folder you have;
* :func:`load_cifar10` — the *binary* version (``cifar-10-batches-bin``), never the pickled
  Python one.

Each returns ``(x_train, y_train), (x_test, y_test)``; labels are int64. Splits are
deterministic: MNIST and CIFAR-10 come split; digits are split by a seeded permutation.
Images come channel-first where there are channels (CIFAR-10: ``(N, 3, 32, 32)``, NCHW).
"""

from __future__ import annotations

import gzip
import os
from typing import Any

import numpy as np

from graphc.errors import FileFormatError

__all__ = ["load_digits", "load_mnist", "load_fashion_mnist", "load_cifar10", "read_idx"]

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = "test_batch.bin"

# IDX type codes -> big-endian NumPy dtypes
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 8x8 digits: images ``(N, 8, 8)`` float32 scaled to [0, 1] (the raw
    values are 0..16), labels 0..9. A seeded permutation puts ``test_fraction`` of them in
    the test set (the same split for the same seed, on every machine)."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise ImportError("gc.datasets.load_digits needs scikit-learn, which ships the data: "
                          "pip install scikit-learn   (or: pip install 'graphc[examples]')") from None
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got {test_fraction}")
    bunch = sk_load_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def read_idx(path: Any) -> np.ndarray:
    """One IDX file (``.gz`` or not) as an array of its native shape and type."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise FileFormatError(f"{path}: cannot read ({err})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise FileFormatError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise FileFormatError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise FileFormatError(f"{path}: {len(data)} bytes, expected {expected} for an IDX "
                              f"array of shape {dims}")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(folder: str, name: str, expected: str) -> str:
    for candidate in (name, name + ".gz"):
        p = os.path.join(folder, candidate)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{os.path.join(folder, name)}(.gz) not found; the folder must "
                            f"hold {expected}")


def load_mnist(path: Any) -> Split:
    """MNIST from the four IDX files in folder ``path`` (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
    each optionally ``.gz``): images ``(N, 28, 28)`` uint8, labels int64."""
    folder = os.fspath(path)
    expected = ", ".join(f"{n}[.gz]" for n in MNIST_FILES)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder} is not a folder; it must hold {expected}")
    arrays = [read_idx(_find(folder, n, expected)) for n in MNIST_FILES]
    x_train, y_train, x_test, y_test = arrays
    for images, labels, which in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise FileFormatError(f"{folder}: the {which} files disagree: images "
                                  f"{images.shape}, labels {labels.shape}")
    return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))


def load_fashion_mnist(path: Any) -> Split:
    """Fashion-MNIST: the same four IDX file names and layout as :func:`load_mnist`."""
    return load_mnist(path)


def load_cifar10(path: Any) -> Split:
    """CIFAR-10, binary version: folder ``path`` (or its ``cifar-10-batches-bin`` subfolder)
    holds ``data_batch_1.bin`` ... ``data_batch_5.bin`` and ``test_batch.bin``, records of
    1 label byte + 3072 pixel bytes. Images ``(N, 3, 32, 32)`` uint8 (NCHW), labels int64."""
    folder = os.fspath(path)
    sub = os.path.join(folder, "cifar-10-batches-bin")
    if os.path.isdir(sub):
        folder = sub
    names = (*CIFAR10_TRAIN, CIFAR10_TEST)
    missing = [n for n in names if not os.path.exists(os.path.join(folder, n))]
    if missing:
        raise FileNotFoundError(f"{folder}: missing {', '.join(missing)}; the CIFAR-10 binary "
                                f"version needs {', '.join(names)} (the pickled python version "
                                "is not read)")

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        p = os.path.join(folder, name)
        raw = np.fromfile(p, np.uint8)
        if raw.size == 0 or raw.size % 3073:
            raise FileFormatError(f"{p}: {raw.size} bytes is not a whole number of "
                                  "3073-byte CIFAR-10 records")
        records = raw.reshape(-1, 3073)
        return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)

    train = [read(n) for n in CIFAR10_TRAIN]
    x_test, y_test = read(CIFAR10_TEST)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), (x_test, y_test)
