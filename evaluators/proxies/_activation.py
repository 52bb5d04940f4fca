"""Proxies that read a network's activations or input Jacobian on one batch: NASWOT, jacob_cov, MeCo.

They run a copy of the network in training mode (BatchNorm uses the batch's statistics, as the
papers' code does with freshly built networks).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from evaluators.proxies._common import Batch, NotApplicable, batch_on, device_of, logits, seeded, working_copy

# Activations whose output is positive exactly where their input is: the sign of the pre-activation
# is the unit's binary code (ReLU's on/off; GELU(x) = x * Phi(x) and SiLU(x) = x * sigmoid(x) alike).
RELU_FAMILY = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU,
               nn.Hardswish, nn.Mish)
_EXACT_FLOAT32 = 2 ** 24  # integers up to this add up exactly in float32


def naswot(net: nn.Module, batch: Batch, *, seed: int = 0) -> float:
    """NASWOT (Mellor et al. 2021, "Neural Architecture Search without Training", ICML).

    Every ReLU-family activation module's input (its pre-activation) gives each example of the batch a
    binary code, 1 where the pre-activation is > 0. The kernel K (N x N) counts, for each pair of
    examples, the units whose codes agree, K = c c^T + (1 - c)(1 - c)^T summed over activations (the
    paper's N_A - d_H); the score is log|det K| (slogdet). Higher is better.

    GELU and SiLU networks (ViT, MLP-Mixer, EfficientNet's MBConv) are scored the same way: the sign of
    the GELU/SiLU pre-activation is the code (both are > 0 exactly where their input is). Activations
    called as functions (``F.relu``) are invisible to the hooks and not read.

    Args:
        net: the built network (left unchanged).
        batch: a minibatch ``(x, y)``; only ``x`` is read.
        seed: seeds torch's generators (dropout, drop-path) for the forward pass.

    Raises:
        NotApplicable: the network has no ReLU-family activation module (or none is called).
        ValueError: a pre-activation is NaN or infinite.
    """
    model = working_copy(net, train=True)
    device = device_of(model)
    x, _ = batch_on(batch, device, "naswot")
    kernels: list[torch.Tensor] = []
    for module in model.modules():  # hooks on the working copy, thrown away with it
        if isinstance(module, RELU_FAMILY):
            module.register_forward_pre_hook(lambda module, inputs: kernels.append(_agreements(inputs[0])))
    with torch.no_grad(), seeded(seed, device):
        model(x)
    if not kernels:
        raise NotApplicable("the network has no ReLU to read codes from")
    return float(torch.linalg.slogdet(torch.stack(kernels).sum(0).cpu())[1])


def _agreements(pre: torch.Tensor) -> torch.Tensor:
    """(N, N) float64: for each pair of examples, the units whose pre-activations agree in being > 0."""
    pre = pre.detach().reshape(pre.shape[0], -1)  # (N, units)
    if not torch.isfinite(pre).all():
        raise ValueError("a pre-activation is NaN or infinite")
    units = pre.shape[1]
    signs = (pre > 0).to(torch.float32 if units < _EXACT_FLOAT32 else torch.float64) * 2 - 1  # +-1
    return (signs @ signs.T).double().add_(units).div_(2)  # agreements - disagreements = s s^T


def jacob_cov(net: nn.Module, batch: Batch, *, seed: int = 0, k: float = 1e-5) -> float:
    """Jacobian covariance (Mellor et al. 2020, "Neural Architecture Search without Training", arXiv
    v1; the ``jacob_cov`` measure of Abdelfattah et al. 2021).

    J = the gradient of the sum of the outputs with respect to each example's input (the reference's
    ``y.backward(ones)``), one row per example; C = its correlation matrix (N x N); with v the
    eigenvalues of C, the score is -sum(log(v + k) + 1 / (v + k)), k = 1e-5. Higher is better (the
    examples' Jacobians are less correlated).

    Args:
        net: the built network (left unchanged).
        batch: a minibatch ``(x, y)`` of at least two examples; only ``x`` is read.
        seed: seeds torch's generators (dropout, drop-path) for the forward pass.
        k: the small constant that keeps the logarithm finite.

    Raises:
        ValueError: an example's input gradient is constant, so the correlation is undefined.
    """
    model = working_copy(net, train=True)
    device = device_of(model)
    x, _ = batch_on(batch, device, "jacob_cov")
    x = x.detach().clone().requires_grad_(True)
    with seeded(seed, device):
        out = logits(model, x)
        out.backward(torch.ones_like(out))
    if x.grad is None:  # e.g. a cell whose every path to the output is 'none': the logits ignore the input
        raise NotApplicable("the network's output does not depend on its input")
    jacobian = x.grad.reshape(x.shape[0], -1).double().cpu()  # (N, C*H*W)
    corr = torch.corrcoef(jacobian)
    if not torch.isfinite(corr).all():
        raise ValueError("an example's input gradient is constant or not finite: its correlation is undefined")
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + k) + 1.0 / (v + k)).sum())


def meco(net: nn.Module, batch: Batch, *, seed: int = 0) -> float:
    """MeCo (Jiang et al. 2023, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
    Eigenvalue of Correlation", NeurIPS).

    One forward pass of the batch; for every leaf module whose output is a feature map (B, C, H, W) or
    token map (B, T, C), the first example's map is reshaped to rows (C x HW, or T x C as the
    reference's ``output[0].reshape(n, -1)``), their Pearson correlation matrix taken (NaN/inf set to 0,
    as the reference does for constant rows) and its minimum eigenvalue added to the score. Higher is
    better. A map with at least as many rows as columns (e.g. C >= H*W) has a singular correlation
    matrix: its minimum eigenvalue, 0, is added without an eigendecomposition. The reference hooks
    every module, containers included, so a block's output is counted once per enclosing container;
    here each leaf module counts once.

    Args:
        net: the built network (left unchanged).
        batch: a minibatch ``(x, y)``; only ``x`` is read (the batch sets BatchNorm's statistics).
        seed: seeds torch's generators (dropout, drop-path) for the forward pass.

    Raises:
        NotApplicable: no leaf module produces a feature map.
        ValueError: a feature map is NaN or infinite.
    """
    model = working_copy(net, train=True)
    device = device_of(model)
    x, _ = batch_on(batch, device, "meco")
    minima: list[float] = []

    def on_output(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor) and output.ndim >= 3 and output.shape[1] >= 2:
            minima.append(_min_eigenvalue_of_correlation(output[0].reshape(output.shape[1], -1)))

    for module in model.modules():  # hooks on the working copy's leaves, thrown away with it
        if next(module.children(), None) is None:
            module.register_forward_hook(on_output)
    with torch.no_grad(), seeded(seed, device):
        model(x)
    if not minima:
        raise NotApplicable("no layer produces a feature map (B, C, H, W) or token map (B, T, C) to correlate")
    return math.fsum(minima)


def _min_eigenvalue_of_correlation(rows: torch.Tensor) -> float:
    """The smallest eigenvalue of the rows' correlation matrix, NaN/inf entries (constant rows) set to 0."""
    rows = rows.detach().double()  # (C, H*W) or (T, C)
    if not torch.isfinite(rows).all():
        raise ValueError("a feature map is NaN or infinite")
    if rows.shape[0] >= rows.shape[1]:  # centred rows span at most columns - 1 dims: singular, min 0
        return 0.0
    corr = torch.nan_to_num(torch.corrcoef(rows), nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr.cpu())[0])
