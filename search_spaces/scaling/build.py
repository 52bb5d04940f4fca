"""The EfficientNet network of a planned genotype: MBConv blocks with squeeze-and-excitation and SiLU.

Follows the paper's TensorFlow reference: BN with momentum 0.99 in TF terms (PyTorch momentum
0.01) and eps 1e-3, expansion conv skipped when the expansion is 1, SE reducing to
``max(1, int(c_in * se))`` channels, residual + stochastic depth (drop-connect) where shapes match,
the reference initialization (conv: normal with fan-out std; classifier: uniform +-1/sqrt(classes)).

Modules are created on the ``meta`` device and materialized once, then initialized: this skips
PyTorch's default init (which the reference init would overwrite anyway) and halves build time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.scaling.layout import BlockPlan, NetworkPlan

BN_MOMENTUM = 0.01  # TF's 0.99 decay
BN_EPS = 1e-3


class ConvBN(nn.Sequential):
    """Conv (no bias, 'same' padding) -> BN -> optional SiLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)]
        if act:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Global pool -> 1x1 conv to ``c_se`` -> SiLU -> 1x1 conv back -> sigmoid gate."""

    def __init__(self, channels: int, c_se: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, c_se, 1)
        self.expand = nn.Conv2d(c_se, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        gate = F.adaptive_avg_pool2d(x, 1)  # (B, C, 1, 1)
        gate = self.expand(F.silu(self.reduce(gate)))
        return x * torch.sigmoid(gate)


def drop_connect(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole examples of the residual branch with probability ``rate``, rescale the rest.

    Uses torch's global generator, seeded by the trainer, like ``nn.Dropout``.
    """
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)  # (B, 1, 1, 1)
    return x * mask / keep


class MBConv(nn.Module):
    """Inverted bottleneck: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project (+ input)."""

    def __init__(self, block: BlockPlan) -> None:
        super().__init__()
        c_mid = block.c_mid
        self.expand = ConvBN(block.c_in, c_mid, 1) if block.expansion != 1 else nn.Identity()
        self.depthwise = ConvBN(c_mid, c_mid, block.kernel, block.stride, groups=c_mid)
        self.se = SqueezeExcite(c_mid, block.se_channels) if block.se_channels else nn.Identity()
        self.project = ConvBN(c_mid, block.c_out, 1, act=False)
        self.residual = block.residual
        self.drop_rate = block.drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, c_in, H, W)
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.residual:
            out = drop_connect(out, self.drop_rate, self.training) + x
        return out


class ScalingNetwork(nn.Module):
    """Resize (when the input differs from the run size) -> stem -> MBConv blocks -> head -> pool -> classifier."""

    def __init__(self, plan: NetworkPlan) -> None:
        super().__init__()
        self.size = plan.size
        self.stem = ConvBN(plan.image_channels, plan.stem, 3, plan.stem_stride)
        self.blocks = nn.Sequential(*(MBConv(block) for block in plan.blocks))
        c_last = plan.blocks[-1].c_out if plan.blocks else plan.stem
        self.head = ConvBN(c_last, plan.head, 1)
        self.dropout = nn.Dropout(plan.dropout)
        self.classifier = nn.Linear(plan.head, plan.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # (B, head)
        return self.classifier(self.dropout(x))


@torch.no_grad()
def init_weights(model: nn.Module) -> None:
    """The reference initialization; also fills BN running statistics (the model was materialized empty)."""
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d):
            # TF's fan-out: k*k*out per group, so a depthwise kernel has fan-out k*k
            fan_out = layer.out_channels * layer.kernel_size[0] * layer.kernel_size[1] // layer.groups
            layer.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
            if layer.bias is not None:
                layer.bias.zero_()
        elif isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.weight.fill_(1.0)
            layer.bias.zero_()
        elif isinstance(layer, nn.Linear):
            bound = 1.0 / math.sqrt(layer.out_features)
            layer.weight.uniform_(-bound, bound)
            layer.bias.zero_()


def build(plan: NetworkPlan, bn_momentum: float = BN_MOMENTUM) -> nn.Module:
    """The initialized network of ``plan`` on the CPU; ``bn_momentum`` (PyTorch's convention) of every BN."""
    with torch.device("meta"):
        model = ScalingNetwork(plan)
    model.to_empty(device="cpu")
    init_weights(model)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = bn_momentum
    return model
