"""gc.datasets: digits split, IDX (MNIST) and binary CIFAR-10 readers on tiny synthetic
files, and the errors for missing or malformed files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from graphc import datasets
from graphc.errors import FileFormatError


def write_idx(path, array, gz=False):
    codes = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}
    code = codes[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_mnist(folder, n_train=5, n_test=3, gz=False):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, a in arrays.items():
        write_idx(folder / name, a, gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_idx_files(tmp_path, gz):
    arrays = make_mnist(tmp_path, gz=gz)
    (xt, yt), (xs, ys) = datasets.load_mnist(tmp_path)
    np.testing.assert_array_equal(xt, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ys, arrays["t10k-labels-idx1-ubyte"])
    assert xt.dtype == np.uint8 and xt.shape == (5, 28, 28) and yt.dtype == np.int64
    (xt2, _), _ = datasets.load_fashion_mnist(tmp_path)
    np.testing.assert_array_equal(xt, xt2)


def test_read_idx_other_types_and_errors(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_idx(tmp_path / "f", a)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "f"), a)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(FileFormatError, match="magic"):
        datasets.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes((tmp_path / "f").read_bytes()[:-2])
    with pytest.raises(FileFormatError, match="expected"):
        datasets.read_idx(tmp_path / "short")


def test_load_mnist_names_the_missing_files(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        datasets.load_mnist(tmp_path / "nowhere")


def test_load_mnist_checks_that_images_and_labels_agree(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(FileFormatError, match="disagree"):
        datasets.load_mnist(tmp_path)


def make_cifar(folder, per_batch=2):
    rng = np.random.default_rng(1)
    records = {}
    for name in (*datasets.CIFAR10_TRAIN, datasets.CIFAR10_TEST):
        labels = rng.integers(0, 10, per_batch, dtype=np.uint8)
        pixels = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([labels[:, None], pixels], 1).tobytes())
        records[name] = (labels, pixels)
    return records


def test_load_cifar10_binary(tmp_path):
    sub = tmp_path / "cifar-10-batches-bin"
    sub.mkdir()
    records = make_cifar(sub)
    (xt, yt), (xs, ys) = datasets.load_cifar10(tmp_path)  # the parent folder works too
    assert xt.shape == (10, 3, 32, 32) and xs.shape == (2, 3, 32, 32) and yt.dtype == np.int64
    labels, pixels = records["data_batch_2.bin"]
    np.testing.assert_array_equal(yt[2:4], labels)
    np.testing.assert_array_equal(xt[2, 1], pixels[0, 1024:2048].reshape(32, 32))  # green
    np.testing.assert_array_equal(ys, records["test_batch.bin"][0])


def test_load_cifar10_errors(tmp_path):
    make_cifar(tmp_path)
    (tmp_path / "data_batch_3.bin").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3.bin"):
        datasets.load_cifar10(tmp_path)
    make_cifar(tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(FileFormatError, match="3073"):
        datasets.load_cifar10(tmp_path)


def test_load_digits_split_is_deterministic():
    pytest.importorskip("sklearn")
    (xt, yt), (xs, ys) = datasets.load_digits()
    assert xt.shape == (1438, 8, 8) and xs.shape == (359, 8, 8)
    assert xt.dtype == np.float32 and 0.0 <= xt.min() and xt.max() <= 1.0
    assert set(np.unique(ys)) == set(range(10))
    (xt2, _), (xs2, ys2) = datasets.load_digits()
    np.testing.assert_array_equal(xs, xs2)
    np.testing.assert_array_equal(ys, ys2)
    _, (xs3, _) = datasets.load_digits(seed=1)
    assert not np.array_equal(xs, xs3)


def test_load_digits_without_sklearn(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        datasets.load_digits()
