"""Pruning-at-initialisation saliencies summed into one score per network (Abdelfattah et al. 2021,
"Zero-Cost Proxies for Lightweight NAS", ICLR; reference code SamsungLabs/zero-cost-nas).

Every score here sums over the weights of the network's conv and linear layers (the reference's
``get_layer_metric_array``); biases, normalisation parameters and embeddings are not scored.
The data-driven ones run the network in training mode (BatchNorm uses the batch's statistics, as in
the reference, which scores freshly built networks) with cross-entropy on the batch.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from evaluators.proxies._common import (Batch, batch_on, device_of, input_shape_of, logits, prunable_layers,
                                        seeded, working_copy)


def synflow(net: nn.Module, batch: Batch | None = None, *, input_shape: tuple[int, ...] | None = None,
            seed: int = 0) -> float:
    """Synaptic flow (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
    conserving synaptic flow", NeurIPS), as used for NAS by Abdelfattah et al. 2021.

    On a copy of the network in double precision with every parameter replaced by its absolute value
    and every BatchNorm bypassed (the reference's ``synflow`` measure, ``bn=False``: BN's forward is a
    no-op), in eval mode, an all-ones input of one example's shape (batch 1) goes through the network;
    R = sum of the output, and the score is sum over conv/linear weights of |theta * dR/dtheta|.
    No data is needed: the shape comes from ``input_shape`` or the batch. Higher is better.

    Args:
        net: the built network (left unchanged).
        batch: a minibatch ``(x, y)``; only ``x``'s shape is read.
        input_shape: one example's shape ``(C, H, W)``, instead of a batch.
        seed: seeds torch's generators for anything random in the forward pass.

    Returns:
        The sum of synaptic saliencies (may be ``inf`` when R overflows double precision).
    """
    shape = input_shape_of(batch, input_shape, "synflow")
    model = working_copy(net, train=False).double()
    _bypass_batchnorm(model)
    with torch.no_grad():
        for param in model.parameters():
            param.abs_()
    device = device_of(model)
    with seeded(seed, device):
        logits(model, torch.ones((1, *shape), dtype=torch.float64, device=device)).sum().backward()
    return _sum_over_weights(model, lambda w, g: (w * g).abs().sum())


def snip(net: nn.Module, batch: Batch, *, seed: int = 0) -> float:
    """SNIP connection sensitivity (Lee et al. 2019, "SNIP: Single-shot Network Pruning based on
    Connection Sensitivity", ICLR): sum over conv/linear weights of |theta * dL/dtheta| with L the
    cross-entropy of the batch (the reference's |dL/dmask| at mask = 1 is the same number).
    Higher is better.

    Args:
        net: the built network (left unchanged).
        batch: a minibatch ``(x, y)`` of inputs and class indices.
        seed: seeds torch's generators (dropout, drop-path) for the forward pass.
    """
    model = _backward_on_batch(net, batch, seed, "snip")
    return _sum_over_weights(model, lambda w, g: (w * g).abs().sum())


def grad_norm(net: nn.Module, batch: Batch, *, seed: int = 0) -> float:
    """Gradient norm (Abdelfattah et al. 2021): sum over conv/linear layers of the L2 (Frobenius) norm of
    dL/dW, L the cross-entropy of the batch. Higher is better.

    Args:
        net: the built network (left unchanged).
        batch: a minibatch ``(x, y)`` of inputs and class indices.
        seed: seeds torch's generators (dropout, drop-path) for the forward pass.
    """
    model = _backward_on_batch(net, batch, seed, "grad_norm")
    return _sum_over_weights(model, lambda w, g: torch.linalg.vector_norm(g))


def grasp(net: nn.Module, batch: Batch, *, seed: int = 0) -> float:
    """GraSP (Wang et al. 2020, "Picking Winning Tickets Before Training by Preserving Gradient Flow",
    ICLR) as a NAS proxy (Abdelfattah et al. 2021): sum over conv/linear weights of -theta * (H g), with
    g = dL/dtheta and H the Hessian of the batch's cross-entropy, H g computed as the gradient of
    g_detached . dL/dtheta (a Hessian-gradient product, no Hessian is formed).

    Sign: the score is the reference's, sum(-theta * Hg) — Abdelfattah et al. added the minus sign
    (GraSP itself prunes the weights with the highest -theta * Hg) because accuracy correlated
    negatively without it; higher is better. Temperature 1, one pass over the batch.

    Args:
        net: the built network (left unchanged).
        batch: a minibatch ``(x, y)`` of inputs and class indices.
        seed: seeds torch's generators (dropout, drop-path) for the forward pass.
    """
    model = working_copy(net, train=True)
    device = device_of(model)
    x, y = batch_on(batch, device, "grasp")
    weights = [layer.weight for layer in prunable_layers(model)]
    with seeded(seed, device), sdpa_kernel([SDPBackend.MATH]):  # the fused attention kernels lack double backward
        loss = F.cross_entropy(logits(model, x), y)
        grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    pairs = [(w, g) for w, g in zip(weights, grads) if g is not None]
    if not pairs:
        return 0.0
    z = sum((g.detach() * g).sum() for _, g in pairs)
    if not z.requires_grad:  # the loss is linear in every weight: H g = 0
        return 0.0
    hessian_grads = torch.autograd.grad(z, [w for w, _ in pairs], allow_unused=True)
    total = sum((-w.detach() * hg).sum().double() for (w, _), hg in zip(pairs, hessian_grads) if hg is not None)
    return float(total)


def fisher(net: nn.Module, batch: Batch, *, seed: int = 0) -> float:
    """Fisher information of activation channels (Theis et al. 2018; Turner et al. 2020, "BlockSwap",
    ICLR; as in Abdelfattah et al. 2021): for the output a of every conv/linear layer and its gradient
    dL/da, per channel k, 0.5 * mean over the batch of (sum over positions of a * dL/da)^2; the score is
    the sum over channels and layers. L is the batch's cross-entropy. Higher is better.

    Channels are dim 1 of a conv's output (positions: the spatial dims) and the last dim of a linear
    layer's output (positions: the token dims between batch and channels, none for (B, C)); a layer
    called several times contributes once per call.

    Args:
        net: the built network (left unchanged).
        batch: a minibatch ``(x, y)`` of inputs and class indices.
        seed: seeds torch's generators (dropout, drop-path) for the forward pass.
    """
    model = working_copy(net, train=True)
    device = device_of(model)
    x, y = batch_on(batch, device, "fisher")
    terms: list[torch.Tensor] = []

    def on_output(layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if not output.requires_grad:
            return
        act = output.detach().clone()  # later in-place ops must not change what is scored
        conv = not isinstance(layer, nn.Linear)
        output.register_hook(lambda grad: terms.append(_fisher_term(act, grad.detach(), conv)))

    for layer in prunable_layers(model):  # hooks on the working copy, thrown away with it
        layer.register_forward_hook(on_output)
    with seeded(seed, device):
        F.cross_entropy(logits(model, x), y).backward()
    return float(sum(terms)) if terms else 0.0


def _fisher_term(act: torch.Tensor, grad: torch.Tensor, conv: bool) -> torch.Tensor:
    """Sum over channels of 0.5 * mean_n (sum over positions of act * grad)^2."""
    product = (act * grad).double()
    if conv:
        per_channel = product.flatten(2).sum(2)  # (B, C)
    else:
        per_channel = product.reshape(product.shape[0], -1, product.shape[-1]).sum(1)  # (B, C)
    return 0.5 * per_channel.pow(2).mean(0).sum()


def _backward_on_batch(net: nn.Module, batch: Batch, seed: int, proxy: str) -> nn.Module:
    """A training-mode copy of ``net`` whose weights hold the gradients of the batch's cross-entropy."""
    model = working_copy(net, train=True)
    device = device_of(model)
    x, y = batch_on(batch, device, proxy)
    with seeded(seed, device):
        F.cross_entropy(logits(model, x), y).backward()
    return model


def _sum_over_weights(model: nn.Module, term: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """Sum of ``term(weight, grad)`` over conv/linear weights that received a gradient, in double."""
    total = torch.zeros((), dtype=torch.float64)
    for layer in prunable_layers(model):
        if layer.weight.grad is not None:
            total += term(layer.weight.detach(), layer.weight.grad).double().cpu()
    return float(total)


def _bypass_batchnorm(model: nn.Module) -> None:
    """Replace every BatchNorm of ``model`` (a working copy) by an identity."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.Identity())
