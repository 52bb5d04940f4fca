"""Your own data for the trainers: ``.npz`` arrays, a folder of images, or any torch ``Dataset``.

Each source reads the data options (``data_dir``, ``dataset``, ``size``) and returns the raw arrays
that :mod:`evaluators.data` splits and normalizes: float32 images (N, C, H, W) in [0, 1] and integer
labels, plus the test split when the source has one (else ``None``: 20% is carved out, seeded).

* ``npz``: ``data_dir`` is a ``.npz`` file with arrays ``x`` and ``y`` (and optionally ``x_test``,
  ``y_test``), or a folder holding exactly one ``*.npz`` file (none or several: an error naming the
  folder); ``x`` as (N, H, W), (N, C, H, W) or (N, H, W, C) with C in 1 or 3; uint8 is scaled.
* ``folder``: ``data_dir`` holds one subfolder of images per class (nested folders included); the
  sorted subfolder names are the labels 0, 1, ... Pillow reads every file with an image extension it
  knows (others are skipped). Images are converted to one mode, ``L`` when every image is grayscale,
  else ``RGB``, and resized (bilinear) to ``size`` x ``size``, or with ``size = 0`` to the most common
  size among them; the log says what was chosen.
* ``dataset``: ``dataset = "package.module:callable"`` names a factory that returns a map-style (or
  iterable) ``torch.utils.data.Dataset`` of ``(image, label)`` items, or a tuple ``(train, test)`` of
  two (the test split is then the held-out one; validation is still carved out of ``train``). It is
  called with one argument, the dict ``{"data_dir": ..., "size": ...}``, when it accepts one, else
  with none. An image is a tensor or array (C, H, W), (H, W) or (H, W, C), or a PIL image: uint8 is
  scaled to [0, 1], floats are kept as they are (as ``ToTensor`` gives them); a label is an int or a
  0-d tensor. ``size`` then averages the images down as for the built-in sets (a factory may honour
  it itself and return ``size`` x ``size`` images). The whole set is read once into arrays (and kept for the next call with the same
  options, so that the input shape and the data come from one read). The module is imported in the
  driver's process only (installed, on ``PYTHONPATH`` or in the current folder); workers get arrays.

A bad folder or factory raises :class:`nas.config.SpecError` naming ``evaluator.data_dir`` (and the
path) or ``evaluator.dataset`` (a bad ``.npz`` file: its path); the CLI prints one line, exit status 2.
"""

from __future__ import annotations

import collections
import functools
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nas.config import SpecError

log = logging.getLogger(__name__)

Raw = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]  # x, y, x_test, y_test
GRAY_MODES = ("1", "L", "LA")  # Pillow modes read as one channel


# ----- arrays (npz, dataset) --------------------------------------------------------------------
def as_images(x: np.ndarray, where: str | Path, key: str) -> np.ndarray:
    """(N, C, H, W) float32 from (N, H, W), (N, C, H, W) or (N, H, W, C) with C in 1 or 3; uint8 scaled to [0, 1]."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise SpecError(f"{where}: {key} must be (N, H, W), (N, C, H, W) or (N, H, W, C) with C 1 or 3, got {x.shape}")
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def as_labels(y: np.ndarray, where: str | Path, key: str) -> np.ndarray:
    """``y`` checked to be a 1-D array of non-negative integer labels."""
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise SpecError(f"{where}: {key} must be a 1-D array of non-negative integer labels, got {y.dtype} {y.shape}")
    return y


def npz_file(data_dir: str) -> Path:
    """The ``.npz`` file ``data_dir`` names: that file, or the only ``*.npz`` file in that folder."""
    path = Path(data_dir).expanduser()
    if data_dir and path.is_dir():
        found = sorted(path.glob("*.npz"))
        if len(found) != 1:
            names = ", ".join(p.name for p in found[:5]) + (", ..." if len(found) > 5 else "")
            raise SpecError(f"evaluator.data_dir: {path}: a folder must hold exactly one .npz file, found "
                            f"{len(found)}{f' ({names}); name the file itself' if found else ''}")
        return found[0]
    if not data_dir or not path.is_file():
        raise FileNotFoundError(f"evaluator.data_dir: {path}: expected a .npz file with arrays x and y (or a "
                                "folder holding one)")
    return path


def read_npz(options: Mapping[str, Any]) -> Raw:
    """The arrays of the ``.npz`` file ``data_dir`` (or of the one ``.npz`` file in the folder ``data_dir``)."""
    path = npz_file(options.get("data_dir", ""))
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as err:
        raise SpecError(f"{path}: not a readable .npz file ({err})") from None
    if "x" not in arrays or "y" not in arrays:
        raise SpecError(f"{path}: expected arrays 'x' and 'y', found {sorted(arrays)}")
    x, y = as_images(arrays["x"], path, "x"), as_labels(arrays["y"], path, "y")
    if len(x) != len(y):
        raise SpecError(f"{path}: x has {len(x)} images but y {len(y)} labels")
    if "x_test" in arrays and "y_test" in arrays:
        return x, y, as_images(arrays["x_test"], path, "x_test"), as_labels(arrays["y_test"], path, "y_test")
    return x, y, None, None


# ----- a folder of images, one subfolder per class --------------------------------------------------
@dataclass(frozen=True)
class FolderScan:
    """What the image headers of a class-per-subfolder tree say, and the mode and size chosen."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[Path, ...]
    labels: tuple[int, ...]
    mode: str  # "L" or "RGB"
    size: tuple[int, int]  # (width, height) every image is resized to
    resized: int  # images not already at that size
    chosen: str  # why that size: "the size option" or "the most common size"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1 if self.mode == "L" else 3, self.size[1], self.size[0])


def scan_folder(data_dir: str, size: int = 0) -> FolderScan:
    """Class subfolders, image files and their headers (Pillow opens files lazily: no pixels are read)."""
    from PIL import Image

    root = Path(data_dir).expanduser()
    if not data_dir or not root.is_dir():
        raise SpecError(f"evaluator.data_dir: {root if data_dir else '(empty)'}: not a folder; expected "
                        "a folder with one subfolder of images per class")
    classes = tuple(sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")))
    if len(classes) < 2:
        raise SpecError(f"evaluator.data_dir: {root}: found {len(classes)} class subfolder(s) {list(classes)}; "
                        "expected one subfolder of images per class, at least two")
    extensions = set(Image.registered_extensions())
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith("."))
        if not found:
            raise SpecError(f"evaluator.data_dir: {root / name}: no images (class {name!r})")
        files += found
        labels += [label] * len(found)
    headers = [_header(path) for path in files]
    mode = "L" if all(m in GRAY_MODES for m, _ in headers) else "RGB"
    sizes = collections.Counter(s for _, s in headers)
    target, chosen = ((size, size), "the size option") if size else (sizes.most_common(1)[0][0], "the most common size")
    return FolderScan(root, classes, tuple(files), tuple(labels), mode, target,
                      sum(n for s, n in sizes.items() if s != target), chosen)


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) of one image file; ``SpecError`` naming it when Pillow cannot read it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.mode, image.size
    except (OSError, ValueError, SyntaxError) as err:  # Pillow's UnidentifiedImageError is an OSError
        raise SpecError(f"evaluator.data_dir: {path}: unreadable image ({err})") from None


def read_folder(options: Mapping[str, Any]) -> Raw:
    """Every image of the folder ``data_dir``, in one mode and size, with its class index."""
    from PIL import Image

    scan = scan_folder(options.get("data_dir", ""), options.get("size", 0))
    c, h, w = scan.shape
    pixels = np.empty((len(scan.files), h, w, c), dtype=np.uint8)  # (N, H, W, C) as Pillow lays it out
    for k, path in enumerate(scan.files):
        try:
            with Image.open(path) as image:
                image = image.convert(scan.mode)
                if image.size != scan.size:
                    image = image.resize(scan.size, Image.Resampling.BILINEAR, reducing_gap=3.0)
                pixels[k] = np.asarray(image, dtype=np.uint8).reshape(h, w, c)
        except (OSError, ValueError, SyntaxError) as err:
            raise SpecError(f"evaluator.data_dir: {path}: unreadable image ({err})") from None
    log.info("%s: %d images in %d classes (%s); read as %s %dx%d, %s (%d resized)", scan.root, len(scan.files),
             len(scan.classes), ", ".join(scan.classes), scan.mode, w, h, scan.chosen, scan.resized)
    return as_images(pixels, scan.root, "images"), np.asarray(scan.labels, dtype=np.int64), None, None


def folder_shape(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    """Input shape and class count of an image folder, from the headers alone."""
    scan = scan_folder(options.get("data_dir", ""), options.get("size", 0))
    return scan.shape, len(scan.classes)


# ----- any torch Dataset ------------------------------------------------------------------------------
def read_dataset(options: Mapping[str, Any]) -> Raw:
    """The factory ``dataset``'s data set(s) as arrays (read once per ``dataset``, ``data_dir``, ``size``)."""
    return _materialised(options.get("dataset", ""), options.get("data_dir", ""), options.get("size", 0))


def factory_of(reference: str) -> Any:
    """The callable named ``"package.module:callable"``; ``SpecError`` naming ``evaluator.dataset``."""
    from nas.registry import import_callable

    return import_callable(reference, "evaluator.dataset")


@functools.lru_cache(maxsize=1)
def _materialised(reference: str, data_dir: str, size: int) -> Raw:
    """Call the factory once and read its data set(s) into arrays (cached: shape_of, then load)."""
    factory = factory_of(reference)
    options = {"data_dir": data_dir, "size": size}
    try:
        inspect.signature(factory).bind(options)
        takes_options = True
    except (TypeError, ValueError):  # takes no argument (or its signature cannot be read)
        takes_options = False
    try:
        made = factory(options) if takes_options else factory()
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise SpecError(f"evaluator.dataset: {reference} raised {type(err).__name__}: {err}") from None
    if isinstance(made, tuple) and len(made) == 2:  # (train, test); a list is a data set of items
        (x, y), (x_test, y_test) = _arrays(made[0], f"{reference} (train)"), _arrays(made[1], f"{reference} (test)")
        if x.shape[1:] != x_test.shape[1:]:
            raise SpecError(f"evaluator.dataset: {reference}: train images are {x.shape[1:]}, test images "
                            f"{x_test.shape[1:]}")
        raw: Raw = (x, y, x_test, y_test)
    else:
        raw = (*_arrays(made, reference), None, None)
    if max(int(labels.max()) for labels in (raw[1], raw[3]) if labels is not None) < 1:
        raise SpecError(f"evaluator.dataset: {reference}: every label is 0; a classifier needs at least two classes")
    return raw


def _arrays(dataset: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, H, W) float32 and labels of every item of a data set."""
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        items: Any = (dataset[i] for i in range(len(dataset)))
    elif hasattr(dataset, "__iter__"):
        items = iter(dataset)
    else:
        raise SpecError(f"evaluator.dataset: {where} returned {type(dataset).__name__}, expected a Dataset "
                        "of (image, label) items or a (train, test) pair of them")
    images, labels = [], []
    for k, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise SpecError(f"evaluator.dataset: {where}: item {k} is not an (image, label) pair")
        image = _array(item[0])
        if images and image.shape != images[0].shape:
            raise SpecError(f"evaluator.dataset: {where}: item {k} has shape {image.shape}, item 0 "
                            f"{images[0].shape}; images must share one shape (resize them in the Dataset)")
        images.append(image)
        labels.append(_array(item[1]))
    if not images:
        raise SpecError(f"evaluator.dataset: {where}: the data set is empty")
    where = f"evaluator.dataset: {where}"
    return as_images(np.stack(images), where, "images"), as_labels(np.asarray(labels), where, "labels")


def _array(value: Any) -> np.ndarray:
    """A tensor (detached, on the CPU), PIL image or array-like as a numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
