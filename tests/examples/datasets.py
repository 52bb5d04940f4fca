"""Dataset factories that the own-data tests name in specs (``dataset = "tests.examples.datasets:digits"``).

Small on purpose: a few hundred 8x8 digits, read the ways user code hands images over.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

IMAGES = 200


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images[:IMAGES].astype(np.float32) / 16.0, bunch.target[:IMAGES]


def digits(options: dict[str, Any]) -> Dataset:
    """Float tensors (1, 8, 8) in [0, 1] with 0-d tensor labels, as ``ToTensor`` would give them."""
    assert set(options) == {"data_dir", "size"}, options
    x, y = _digits()
    return TensorDataset(torch.from_numpy(x)[:, None], torch.from_numpy(y))


class Bytes(Dataset):
    """uint8 arrays (H, W, 1) with int labels: a map-style Dataset of its own class."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = (x * 255).astype(np.uint8)[..., None], y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.x[index], int(self.y[index])


def digits_pair() -> tuple[Dataset, Dataset]:
    """A (train, test) pair; takes no argument."""
    x, y = _digits()
    return Bytes(x[:150], y[:150]), Bytes(x[150:], y[150:])


def one_class() -> Dataset:
    x, _ = _digits()
    return TensorDataset(torch.from_numpy(x), torch.zeros(len(x), dtype=torch.int64))


def ragged() -> list[tuple[torch.Tensor, int]]:
    return [(torch.zeros(1, 8, 8), 0), (torch.zeros(1, 6, 6), 1)]


def missing_files(options: dict[str, Any]) -> Dataset:
    raise FileNotFoundError(f"{options['data_dir']}/train.bin: no such file")


NOT_CALLABLE = 3
