"""Data loaders on small files written in the exact real formats: IDX (gzipped), CIFAR pickles, npz."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from evaluators.data import FASHION_DIR, load, read_idx
from tests.conftest import need


def write_idx(path, array: np.ndarray, gz: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def fashion_folder(tmp_path, n_train=40, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)), gz)
    write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, n_train), gz)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)), gz)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10, gz)
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_files(tmp_path, gz):
    splits = load("fashion-mnist", str(fashion_folder(tmp_path, gz=gz)), seed=0, valid_fraction=0.25)
    assert splits.input_shape == (1, 28, 28) and splits.classes == 10
    assert (len(splits.x_train), len(splits.x_valid), len(splits.x_test)) == (30, 10, 10)
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int64
    assert abs(float(splits.x_train.mean())) < 1e-4 and abs(float(splits.x_train.std()) - 1) < 1e-2


def test_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "x"
    bad.write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match=f"{bad}: not an IDX file"):
        read_idx(bad)
    short = tmp_path / "y"
    short.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x01\x02")
    with pytest.raises(ValueError, match="header says"):
        read_idx(short)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*not found; expected the IDX files"):
        load("fashion-mnist", str(tmp_path / "empty"))


def test_real_fashion_mnist_from_debian():
    need((__import__("pathlib").Path(FASHION_DIR) / "t10k-labels-idx1-ubyte.gz").is_file(),
         f"Fashion-MNIST not installed at {FASHION_DIR} (apt-get install dataset-fashion-mnist)")
    splits = load("fashion-mnist", train_limit=500, valid_limit=100)
    assert len(splits.x_test) == 10_000 and (len(splits.x_train), len(splits.x_valid)) == (500, 100)
    assert splits.classes == 10


def write_cifar(folder, names, label_key, n=6, classes=10):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in names:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 label_key: [int(v) for v in rng.integers(0, classes, n)]}
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle)


def test_cifar10_pickles_in_their_standard_folder(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels")
    splits = load("cifar10", str(tmp_path), valid_fraction=0.2)
    assert splits.input_shape == (3, 32, 32)
    assert len(splits.x_train) + len(splits.x_valid) == 30 and len(splits.x_test) == 6


def test_cifar100_pickles_use_fine_labels(tmp_path):
    write_cifar(tmp_path, ["train", "test"], b"fine_labels", n=20, classes=100)
    splits = load("cifar100", str(tmp_path))
    assert len(splits.x_test) == 20 and splits.classes <= 100


def test_cifar_missing_or_malformed_files(tmp_path):
    write_cifar(tmp_path / "c", ["data_batch_1"], b"labels")
    with pytest.raises(FileNotFoundError, match="missing data_batch_2, .*test_batch"):
        load("cifar10", str(tmp_path / "c"))
    (tmp_path / "d").mkdir()
    for name in ["train", "test"]:
        (tmp_path / "d" / name).write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a CIFAR pickle"):
        load("cifar100", str(tmp_path / "d"))
    with pytest.raises(FileNotFoundError, match="evaluator.data_dir: required"):
        load("cifar10", "")


@pytest.mark.parametrize("layout", ["nhw", "nchw", "nhwc"])
def test_npz_layouts_and_uint8_scaling(tmp_path, layout):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (50, 3, 12, 12), dtype=np.uint8)
    if layout == "nhw":
        x = x[:, 0]
    elif layout == "nhwc":
        x = x.transpose(0, 2, 3, 1)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=rng.integers(0, 4, 50))
    splits = load("npz", str(path))
    assert splits.input_shape == ((1, 12, 12) if layout == "nhw" else (3, 12, 12))
    assert len(splits.x_test) == 10  # no test arrays: 20% held out, seeded


def test_npz_with_test_arrays_and_errors(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((10, 8, 8)), y=np.arange(10) % 2, x_test=np.zeros((4, 8, 8)), y_test=np.arange(4) % 2)
    assert len(load("npz", str(path)).x_test) == 4
    np.savez(path, x=np.zeros((10, 8, 8)), labels=np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="expected arrays 'x' and 'y'"):
        load("npz", str(path))
    np.savez(path, x=np.zeros((10, 8, 8)), y=np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match="x has 10 images but y 9 labels"):
        load("npz", str(path))
    with pytest.raises(FileNotFoundError, match="expected a .npz file"):
        load("npz", str(tmp_path / "none.npz"))


def test_digits_split_is_seeded_and_disjoint():
    a, b, c = load("digits", seed=0), load("digits", seed=0), load("digits", seed=1)
    assert np.array_equal(a.x_valid, b.x_valid) and not np.array_equal(a.x_valid, c.x_valid)
    assert len(a.x_train) + len(a.x_valid) + len(a.x_test) == 1797
    assert a.input_shape == (1, 8, 8) and a.classes == 10


def test_size_downsamples_by_averaging_blocks(tmp_path):
    folder = fashion_folder(tmp_path)
    full, small = load("fashion-mnist", str(folder)), load("fashion-mnist", str(folder), size=14)
    assert small.input_shape == (1, 14, 14) and len(small.x_train) == len(full.x_train)
    with pytest.raises(ValueError, match="evaluator.size: 28x28 images cannot be averaged down to 10x10"):
        load("fashion-mnist", str(folder), size=10)
