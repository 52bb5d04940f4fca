"""The one op registry shared by all spaces: name -> factory ``(c_in, c_out, stride) -> nn.Module``.

Each space declares its op vocabulary as a tuple of these names. Convolutions follow the
ReLU -> conv -> BN order of the NASNet/DARTS/NAS-Bench-201 references. An op whose input and output
differ in channels or resolution adapts itself (1x1 conv, factorized reduction).

Names (one per op; the NAS-Bench-201 names ``nor_conv_*`` are aliases of ``conv_*``):

=====================  ==========================================================================
``none``               zeros (DARTS)
``skip_connect``       identity; factorized reduction at stride 2 (NASNet "identity", AmoebaNet "none")
``avg_pool_3x3``       3x3 average pooling (count_include_pad=False)
``max_pool_KxK``       KxK max pooling, K in 3, 5, 7
``conv_1x1/3x3``       ReLU-conv-BN
``conv_3x3_dil2``      ReLU-3x3 conv with dilation 2-BN (NASNet "3x3 dilated convolution")
``conv_1x3_3x1``       bottlenecked 1x3 then 3x1 conv (NASNet "1x3 then 3x1"; AmoebaNet reference form)
``conv_1x7_7x1``       bottlenecked 1x7 then 7x1 conv (NASNet/AmoebaNet "1x7 then 7x1")
``sep_conv_KxK``       (ReLU-depthwise KxK-pointwise-BN) twice, stride on the first, K in 3, 5, 7
``dil_conv_3x3/5x5``   ReLU-depthwise KxK dilation 2-pointwise-BN (DARTS; AmoebaNet "dilated sep. conv")
=====================  ==========================================================================
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.op_costs import bottleneck_width

Factory = Callable[[int, int, int], nn.Module]


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole examples of ``x`` (B, ...) with probability ``prob``, rescaling the rest (NASNet/DARTS drop-path)."""
    keep = 1.0 - prob
    mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class Zero(nn.Module):
    """The ``none`` op: zeros of the output's shape."""

    def __init__(self, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        s = self.stride
        return x.new_zeros(b, self.c_out, (h + s - 1) // s, (w + s - 1) // s)


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (no bias) -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 dilation: int = 1) -> None:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (dilation * (kh - 1) // 2, dilation * (kw - 1) // 2)
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, (kh, kw), stride, padding, dilation, bias=False),
                         nn.BatchNorm2d(c_out))


class SepConv(nn.Sequential):
    """ReLU -> depthwise KxK (stride, dilation) -> pointwise 1x1 -> BN: one separable conv."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1) -> None:
        padding = dilation * (kernel - 1) // 2
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out))


class StackedSepConv(nn.Sequential):
    """Two separable convs (NASNet/DARTS ``sep_conv``): the first strides and maps to ``c_out``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(SepConv(c_in, c_out, kernel, stride), SepConv(c_out, c_out, kernel, 1))


class FactorizedConv(nn.Sequential):
    """1xK then Kx1 conv, striding along width then height, as in the AmoebaNet reference.

    ReLU-1x1 to a bottleneck (``bottleneck_width``)-BN, then ReLU-1xK-BN-ReLU-Kx1-BN, then
    ReLU-1x1 back to ``c_out``-BN; without the bottleneck when it would have no channels.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        inner = bottleneck_width(kernel, c_out)
        mid = inner or c_out
        pad = kernel // 2
        layers: list[nn.Module] = [ReLUConvBN(c_in, inner, 1)] if inner else []
        layers += [nn.ReLU(inplace=False),
                   nn.Conv2d(inner or c_in, mid, (1, kernel), (1, stride), (0, pad), bias=False),
                   nn.BatchNorm2d(mid), nn.ReLU(inplace=False),
                   nn.Conv2d(mid, mid, (kernel, 1), (stride, 1), (pad, 0), bias=False),
                   nn.BatchNorm2d(mid)]
        if inner:
            layers.append(ReLUConvBN(inner, c_out, 1))
        super().__init__(*layers)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing half the pixels: two offset stride-2 1x1 convs, concatenated.

    The second path is shifted by one pixel; odd sizes are zero-padded so both paths agree.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]  # (B, C, H, W), moved one pixel up-left
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


def skip_connect(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Identity, or a factorized reduction / 1x1 projection where shapes differ."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    if stride == 1:
        return ReLUConvBN(c_in, c_out, 1)
    return FactorizedReduce(c_in, c_out)


def pool(kind: str, kernel: int) -> Factory:
    """Pooling with 'same' padding, followed by a 1x1 conv-BN when channels change (NASNet)."""

    def make(c_in: int, c_out: int, stride: int) -> nn.Module:
        if kind == "avg":
            layer: nn.Module = nn.AvgPool2d(kernel, stride, kernel // 2, count_include_pad=False)
        else:
            layer = nn.MaxPool2d(kernel, stride, kernel // 2)
        if c_in == c_out:
            return layer
        return nn.Sequential(layer, nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))

    return make


def conv(kernel: int, dilation: int = 1) -> Factory:
    """ReLU -> kxk conv -> BN."""
    return lambda c_in, c_out, stride: ReLUConvBN(c_in, c_out, kernel, stride, dilation)


OPS: dict[str, Factory] = {
    "none": lambda c_in, c_out, stride: Zero(c_out, stride),
    "skip_connect": skip_connect,
    "avg_pool_3x3": pool("avg", 3),
    "max_pool_3x3": pool("max", 3),
    "max_pool_5x5": pool("max", 5),
    "max_pool_7x7": pool("max", 7),
    "conv_1x1": conv(1),
    "conv_3x3": conv(3),
    "conv_3x3_dil2": conv(3, dilation=2),
    "conv_1x3_3x1": lambda c_in, c_out, stride: FactorizedConv(c_in, c_out, 3, stride),
    "conv_1x7_7x1": lambda c_in, c_out, stride: FactorizedConv(c_in, c_out, 7, stride),
    "sep_conv_3x3": lambda c_in, c_out, stride: StackedSepConv(c_in, c_out, 3, stride),
    "sep_conv_5x5": lambda c_in, c_out, stride: StackedSepConv(c_in, c_out, 5, stride),
    "sep_conv_7x7": lambda c_in, c_out, stride: StackedSepConv(c_in, c_out, 7, stride),
    "dil_conv_3x3": lambda c_in, c_out, stride: SepConv(c_in, c_out, 3, stride, dilation=2),
    "dil_conv_5x5": lambda c_in, c_out, stride: SepConv(c_in, c_out, 5, stride, dilation=2),
}
OPS["nor_conv_1x1"] = OPS["conv_1x1"]  # NAS-Bench-201's names for the same ops
OPS["nor_conv_3x3"] = OPS["conv_3x3"]


def make_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """Build op ``name``; ``KeyError`` lists the known names."""
    try:
        factory = OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known: {', '.join(sorted(OPS))}") from None
    return factory(c_in, c_out, stride)
