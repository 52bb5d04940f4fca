"""Image classification data sets as normalized numpy arrays with seeded train/validation/test splits.

Sources (``name``):

* ``digits``: scikit-learn's bundled 8x8 digits (1,797 images); the offline default.
* ``fashion-mnist``: the four IDX files (optionally gzipped) in ``data_dir``, by default
  ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).
* ``cifar10`` / ``cifar100``: the standard python-pickle layout (``data_batch_1..5``/``test_batch``,
  or ``train``/``test``) in ``data_dir`` or its ``cifar-10-batches-py``/``cifar-100-python`` folder.
* ``npz``, ``folder``, ``dataset``: your own data, a ``.npz`` file of arrays, a folder of images with
  one subfolder per class, or a ``"package.module:callable"`` returning a torch ``Dataset``
  (``dataset``); see :mod:`evaluators.own_data`.

Searches score on the validation split; the test split is reserved for final training. Sets without
a test split get one carved out (20%, seeded). Channels are normalized with the training split's
mean and standard deviation. ``size`` downsamples images by area averaging (28 -> 14 for
Fashion-MNIST, say), the usual way to make a search proxy cheaper; an image folder is resized to it.
Every source is a function of the data options (``data_dir``, ``dataset``, ``size``) in ``LOADERS``.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from evaluators.own_data import Raw, folder_shape, read_dataset, read_folder, read_npz
from nas.config import SpecError

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
KNOWN_SHAPES = {"digits": ((1, 8, 8), 10), "fashion-mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10),
                "cifar100": ((3, 32, 32), 100)}


@dataclass
class Splits:
    """Normalized float32 images (N, C, H, W) and int64 labels of each split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    mean: tuple[float, ...] = ()  # per channel, of the training split (what was subtracted)
    std: tuple[float, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


def load(name: str, data_dir: str = "", seed: int = 0, valid_fraction: float = 0.2, train_limit: int = 0,
         valid_limit: int = 0, size: int = 0, dataset: str = "") -> Splits:
    """Read a data set and split it; ``size`` (if not 0) downsamples to ``size`` x ``size``.

    ``dataset`` is the ``"package.module:callable"`` of ``name = "dataset"`` (see :mod:`evaluators.own_data`).

    Raises:
        FileNotFoundError: a file is missing (the message names the path and the expected files).
        ValueError: a file is malformed or the arrays are inconsistent.
    """
    x, y, x_test, y_test = _read(name, data_dir, size, dataset)
    if size:
        x = downsample(x, size)
        x_test = downsample(x_test, size) if x_test is not None else None
    rng = np.random.default_rng(seed)
    if x_test is None or y_test is None:
        x, y, x_test, y_test = _split(x, y, 0.2, rng)
    x_train, y_train, x_valid, y_valid = _split(x, y, valid_fraction, rng)
    x_train, y_train = _limit(x_train, y_train, train_limit)
    x_valid, y_valid = _limit(x_valid, y_valid, valid_limit)
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    classes = int(max(y.max(), y_test.max())) + 1

    def norm(a: np.ndarray) -> np.ndarray:
        return ((a - mean) / std).astype(np.float32)

    return Splits(name, norm(x_train), y_train.astype(np.int64), norm(x_valid), y_valid.astype(np.int64),
                  norm(x_test), y_test.astype(np.int64), classes,
                  tuple(float(v) for v in mean.ravel()), tuple(float(v) for v in std.ravel()))


def shape_of(name: str, data_dir: str = "", size: int = 0, dataset: str = "") -> tuple[tuple[int, int, int], int]:
    """Input shape and class count, cheaply where the source allows (an image folder: its headers)."""
    _check_source(name, dataset)
    if name in KNOWN_SHAPES:
        (c, h, w), classes = KNOWN_SHAPES[name]
    elif name == "folder":
        return folder_shape({"data_dir": data_dir, "size": size})
    else:
        x, y, _, y_test = _read(name, data_dir, size, dataset)
        (c, h, w), classes = x.shape[1:], int(max(y.max(), y_test.max() if y_test is not None else 0)) + 1
    if size:
        _factor(h, w, size)
        h = w = size
    return (c, h, w), classes


def task_of(options: Mapping[str, Any]) -> Any:
    """The ``nas.space.Task`` of the data options (``data``, ``data_dir``, ``size``, ``dataset``) of an evaluator."""
    from nas.space import Task

    shape, classes = shape_of(options.get("data", "digits"), options.get("data_dir", ""), options.get("size", 0),
                              options.get("dataset", ""))
    return Task(shape, classes)


def _read(name: str, data_dir: str, size: int, dataset: str) -> Raw:
    """The source's raw arrays (an image folder comes at ``size`` already)."""
    _check_source(name, dataset)
    return LOADERS[name]({"data_dir": data_dir, "size": size, "dataset": dataset})


def _check_source(name: str, dataset: str) -> None:
    """``SpecError`` for an unknown source, or a ``dataset`` given to another source."""
    if name not in LOADERS:
        raise SpecError(f"evaluator.data: unknown data set {name!r}; known: {', '.join(LOADERS)}")
    if dataset and name != "dataset":
        raise SpecError(f"evaluator.dataset: only read with data = 'dataset' (data is {name!r})")


def _factor(h: int, w: int, size: int) -> int:
    """The integer downsampling factor from (h, w) to ``size``; ``ValueError`` if there is none."""
    if h != w or size <= 0 or h % size:
        raise SpecError(f"evaluator.size: {h}x{w} images cannot be averaged down to {size}x{size} "
                         f"(size must divide {h})")
    return h // size


def downsample(x: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, size, size) by averaging square blocks."""
    factor = _factor(x.shape[2], x.shape[3], size)
    if factor == 1:
        return x
    n, c = x.shape[:2]
    return x.reshape(n, c, size, factor, size, factor).mean(axis=(3, 5)).astype(np.float32)


def _split(x: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator) -> Raw:
    """Seeded random split into (rest, held-out ``fraction``)."""
    order = rng.permutation(len(x))
    held = max(1, int(round(len(x) * fraction)))
    if held >= len(x):
        raise SpecError(f"data: {len(x)} examples are too few to hold out {fraction:.0%}")
    return x[order[held:]], y[order[held:]], x[order[:held]], y[order[:held]]


def _limit(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    return (x[:limit], y[:limit]) if 0 < limit < len(x) else (x, y)


# ----- sources --------------------------------------------------------------------------------------
def _digits(options: Mapping[str, Any]) -> Raw:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images[:, None].astype(np.float32) / 16.0, bunch.target, None, None)


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (ubyte data only), from a plain or gzipped file."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(4)
            if len(header) != 4 or header[:2] != b"\x00\x00" or header[2] != 0x08:
                raise SpecError(f"{path}: not an IDX file of unsigned bytes (magic {header.hex()})")
            dims = struct.unpack(">" + "I" * header[3], handle.read(4 * header[3]))
            data = np.frombuffer(handle.read(), dtype=np.uint8)
    except (OSError, EOFError, struct.error) as err:
        raise SpecError(f"{path}: unreadable IDX file ({err})") from None
    if data.size != int(np.prod(dims)):
        raise SpecError(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def _fashion(options: Mapping[str, Any]) -> Raw:
    folder = Path(options["data_dir"] or FASHION_DIR)
    arrays = []
    for stem in IDX_FILES:
        path = next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"fashion-mnist: {folder / stem}[.gz] not found; expected the IDX files "
                                    f"{', '.join(IDX_FILES)} (apt-get install dataset-fashion-mnist, or --data-dir)")
        arrays.append(read_idx(path))
    x, y, x_test, y_test = arrays
    for images, labels, split in ((x, y, "train"), (x_test, y_test, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise SpecError(f"fashion-mnist: {split} images {images.shape} do not match labels {labels.shape}")
    return (x[:, None].astype(np.float32) / 255.0, y, x_test[:, None].astype(np.float32) / 255.0, y_test)


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    try:
        with path.open("rb") as handle:
            return pickle.load(handle, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise SpecError(f"{path}: not a CIFAR pickle ({err})") from None


def _cifar_batches(folder: Path, names: list[str], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in names:
        batch = _unpickle(folder / name)
        if b"data" not in batch or label_key not in batch:
            raise SpecError(f"{folder / name}: expected keys b'data' and {label_key!r}")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(batch[label_key]):
            raise SpecError(f"{folder / name}: expected data of shape (N, 3072) with N labels, got {data.shape}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[label_key]))
    return np.concatenate(xs).astype(np.float32) / 255.0, np.concatenate(ys)


def _cifar(subfolder: str, train: list[str], test: str, label_key: bytes) -> Callable[[Mapping[str, Any]], Raw]:
    def load_cifar(options: Mapping[str, Any]) -> Raw:
        data_dir = options["data_dir"]
        if not data_dir:
            raise FileNotFoundError(f"evaluator.data_dir: required; a folder holding {', '.join(train)} and {test}")
        folder = Path(data_dir)
        if (folder / subfolder).is_dir():
            folder = folder / subfolder
        missing = [n for n in train + [test] if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder}: missing {', '.join(missing)}; expected {', '.join(train)} and {test}")
        x, y = _cifar_batches(folder, train, label_key)
        x_test, y_test = _cifar_batches(folder, [test], label_key)
        return x, y, x_test, y_test
    return load_cifar


LOADERS: dict[str, Callable[[Mapping[str, Any]], Raw]] = {  # each reads data_dir, size, dataset as it needs
    "digits": _digits,
    "fashion-mnist": _fashion,
    "cifar10": _cifar("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels"),
    "cifar100": _cifar("cifar-100-python", ["train"], "test", b"fine_labels"),
    "npz": read_npz,
    "folder": read_folder,
    "dataset": read_dataset,
}
