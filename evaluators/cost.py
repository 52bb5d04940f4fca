"""Params and FLOPs of a built module (torch), to check the genotype-side ``SearchSpace.cost``.

FLOPs are multiply-accumulates of one forward pass of conv and linear layers (the convention of
the NASNet/EfficientNet papers' "multiply-adds"); BN, activations, pooling and additions are not
counted. A module whose own forward multiplies matrices outside those layers (attention's Q K^T and
attention x V) reports them through a ``matmul_macs(inputs, output) -> int`` method (per example),
which :func:`count_macs` adds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def count_params(module: nn.Module, exclude: tuple[str, ...] = ("aux",)) -> int:
    """Trainable parameters, leaving out submodules whose name starts with one of ``exclude``."""
    total = 0
    for name, param in module.named_parameters():
        if param.requires_grad and not any(part.startswith(exclude) for part in name.split(".")):
            total += param.numel()
    return total


def count_macs(module: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> int:
    """Multiply-accumulates of conv and linear layers (and modules' ``matmul_macs``) in one forward pass
    (per example)."""
    total = [0]

    def conv_hook(layer: nn.Conv2d, inputs: Any, output: torch.Tensor) -> None:
        kh, kw = layer.kernel_size
        per_position = (layer.in_channels // layer.groups) * kh * kw
        total[0] += output.numel() // output.shape[0] * per_position

    def linear_hook(layer: nn.Linear, inputs: Any, output: torch.Tensor) -> None:
        total[0] += output.numel() // output.shape[0] * layer.in_features

    def matmul_hook(layer: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        total[0] += layer.matmul_macs(inputs, output)

    hooks = []
    for layer in module.modules():
        if callable(getattr(layer, "matmul_macs", None)):
            hooks.append(layer.register_forward_hook(matmul_hook))
        if isinstance(layer, nn.Conv2d):
            hooks.append(layer.register_forward_hook(conv_hook))
        elif isinstance(layer, nn.Linear):
            hooks.append(layer.register_forward_hook(linear_hook))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(batch, *input_shape))
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    return total[0]
