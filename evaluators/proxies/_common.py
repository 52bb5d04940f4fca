"""What every proxy shares: a working copy of the caller's network, the batch, seeding and the
weights the pruning-at-initialisation proxies score."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]  # (x (B, C, H, W), y (B,) class indices)

# The layers whose weights the saliency proxies sum over: Abdelfattah et al.'s ``get_layer_metric_array``
# (zero-cost-nas) takes every Conv2d and Linear weight; biases, normalisation and embeddings are left out.
PRUNABLE = (nn.modules.conv._ConvNd, nn.Linear)


class NotApplicable(ValueError):
    """The proxy does not apply to this kind of network; the message says why, in one line."""


class MissingInput(ValueError):
    """The caller gave the proxy too little to work on (a caller mistake: ``score`` raises it)."""


def device_of(net: nn.Module) -> torch.device:
    """The device of the network's first parameter or buffer (CPU for a network with neither)."""
    for tensor in [*net.parameters(), *net.buffers()]:
        return tensor.device
    return torch.device("cpu")


def working_copy(net: nn.Module, *, train: bool) -> nn.Module:
    """A deep copy of ``net`` in training or eval mode, every parameter trainable and without gradients,
    so that a proxy never changes the caller's weights, buffers, mode or gradients."""
    model = copy.deepcopy(net)
    model.train(train)
    for param in model.parameters():
        param.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    return model


def batch_on(batch: Batch | None, device: torch.device, proxy: str) -> Batch:
    """``(x, y)`` on ``device``; raises :class:`MissingInput` without a batch."""
    if batch is None:
        raise MissingInput(f"{proxy} needs a minibatch (x, y) of real inputs and labels")
    x, y = batch
    return x.to(device), y.to(device)


def input_shape_of(batch: Batch | None, input_shape: tuple[int, ...] | None, proxy: str) -> tuple[int, ...]:
    """One example's shape, ``(C, H, W)``: ``input_shape`` if given, else the batch's."""
    if input_shape is not None:
        return tuple(int(size) for size in input_shape)
    if batch is None:
        raise MissingInput(f"{proxy} needs a minibatch (x, y) or input_shape=(C, H, W)")
    return tuple(batch[0].shape[1:])


def logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's main output; a ``(logits, aux_logits)`` pair (NASNet's auxiliary head) gives logits."""
    out = net(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def prunable_layers(net: nn.Module) -> list[nn.Module]:
    """Every conv and linear layer of ``net`` that has a weight, in module order."""
    return [layer for layer in net.modules() if isinstance(layer, PRUNABLE) and layer.weight is not None]


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's global generators (dropout, drop-path) seeded by ``seed``; the caller's
    generator states are restored afterwards."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        for index in devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
