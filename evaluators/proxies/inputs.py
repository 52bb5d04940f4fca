"""What proxies read besides the network: one minibatch of a data set, or the input shape and cost."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from evaluators.proxies import PROXIES
from nas.space import Task


def data_batch(data: str, data_dir: str, batch_size: int, seed: int, size: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` normalised training images of ``data`` and their labels, drawn with ``seed``."""
    from evaluators.data import load

    splits = load(data, data_dir, seed=seed, size=size)
    index = np.random.default_rng(seed).permutation(len(splits.x_train))[:batch_size]
    return splits.x_train[index].copy(), splits.y_train[index].copy()


def proxy_batch(task: Task, data: str, data_dir: str, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One minibatch of ``data`` fitted to ``task``: resized to its height and width, channels
    repeated (or averaged) to its count, labels modulo its classes."""
    x_all, y_all = data_batch(data, data_dir, batch_size, seed)
    x, y = torch.from_numpy(x_all), torch.from_numpy(y_all) % task.num_classes
    channels, height, width = task.input_shape
    if x.shape[-2:] != (height, width):
        x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    if x.shape[1] != channels:
        x = x.mean(dim=1, keepdim=True).expand(-1, channels, -1, -1).contiguous()
    return x, y


def proxy_options(name: str, space: Any, genotype: Any, task: Task) -> dict[str, Any]:
    """What a data-free proxy takes instead of a batch: the input shape, and for flops the space's cost."""
    accepted = inspect.signature(PROXIES[name].function).parameters
    options: dict[str, Any] = {}
    if "input_shape" in accepted:
        options["input_shape"] = task.input_shape
    if "cost" in accepted:
        options["cost"] = space.cost(genotype, task)
    return options
