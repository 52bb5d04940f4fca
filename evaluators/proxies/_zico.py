"""ZiCo: gradient statistics across minibatches (Li et al. 2023)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.proxies._common import (Batch, MissingInput, batch_on, device_of, logits, prunable_layers, seeded,
                                        working_copy)


def zico(net: nn.Module, batch: Batch, *, splits: int = 2, seed: int = 0) -> float:
    """ZiCo (Li et al. 2023, "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
    ICLR).

    The batch is split into ``splits`` equal parts (two halves by default), each one minibatch: the
    gradient of its cross-entropy gives one sample of every conv/linear weight's gradient. Per layer,
    over the weights whose gradient varies (std > 0, population std as the paper's code's ``np.std``),
    S = sum of mean|g| / std(g); the score is the sum over layers of log S (layers with S = 0 left out,
    as in the paper's code). Higher is better.

    Args:
        net: the built network (left unchanged).
        batch: a minibatch ``(x, y)`` of at least ``splits`` examples.
        splits: how many gradient samples the batch is split into.
        seed: seeds torch's generators (dropout, drop-path) for the forward passes.

    Raises:
        MissingInput: the batch has fewer than ``splits`` examples, or ``splits`` < 2.
        ValueError: a gradient is NaN or infinite.
    """
    model = working_copy(net, train=True)
    device = device_of(model)
    x, y = batch_on(batch, device, "zico")
    if splits < 2 or x.shape[0] < splits:
        raise MissingInput(f"zico needs splits >= 2 and a batch of at least {splits} examples, got {x.shape[0]}")
    layers = prunable_layers(model)
    samples: list[list[torch.Tensor]] = [[] for _ in layers]
    with seeded(seed, device):
        for part in torch.tensor_split(torch.arange(x.shape[0], device=device), splits):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(logits(model, x[part]), y[part]).backward()
            for grads, layer in zip(samples, layers):
                if layer.weight.grad is not None:
                    grads.append(layer.weight.grad.detach().flatten().double())
    return math.fsum(_log_inverse_cv(torch.stack(grads)) for grads in samples if len(grads) == splits)


def _log_inverse_cv(grads: torch.Tensor) -> float:
    """log of sum over weights of mean|g| / std(g) for one layer's gradient samples (splits, P); 0 when that is 0."""
    if not torch.isfinite(grads).all():
        raise ValueError("a gradient is NaN or infinite")
    std = grads.std(dim=0, unbiased=False)
    varies = std > 0
    total = float((grads.abs().mean(dim=0)[varies] / std[varies]).sum())
    return math.log(total) if total > 0 else 0.0
