"""Params and multiply-accumulates of the ops in ``search_spaces.ops``, computed without torch.

Each function mirrors the module its namesake builds, layer by layer, so a space can report the cost
of a genotype without allocating a tensor; ``tests/search_spaces/test_ops.py`` checks every op
against the built module. MACs count conv and linear layers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

OP_NAMES: tuple[str, ...] = (
    "none", "skip_connect", "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7",
    "conv_1x1", "conv_3x3", "conv_3x3_dil2", "conv_1x3_3x1", "conv_1x7_7x1",
    "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5",
    "nor_conv_1x1", "nor_conv_3x3",
)


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass
class Tally:
    """Running totals of params and MACs."""

    params: int = 0
    macs: int = 0

    def conv(self, c_in: int, c_out: int, h: int, w: int, kernel: tuple[int, int] = (1, 1),
             stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0), dilation: int = 1,
             groups: int = 1, bias: bool = False) -> tuple[int, int]:
        """Add a Conv2d; returns the output (h, w)."""
        h_out = conv_out(h, kernel[0], stride[0], padding[0], dilation)
        w_out = conv_out(w, kernel[1], stride[1], padding[1], dilation)
        weights = c_out * (c_in // groups) * kernel[0] * kernel[1]
        self.params += weights + (c_out if bias else 0)
        self.macs += weights * h_out * w_out
        return h_out, w_out

    def bn(self, channels: int) -> None:
        """Add an affine BatchNorm2d."""
        self.params += 2 * channels

    def linear(self, c_in: int, c_out: int, bias: bool = True) -> None:
        """Add a Linear layer."""
        self.params += c_in * c_out + (c_out if bias else 0)
        self.macs += c_in * c_out

    def relu_conv_bn(self, c_in: int, c_out: int, h: int, w: int, kernel: int = 1, stride: int = 1,
                     dilation: int = 1) -> tuple[int, int]:
        """``ops.ReLUConvBN`` with a square kernel."""
        pad = dilation * (kernel - 1) // 2
        out = self.conv(c_in, c_out, h, w, (kernel, kernel), (stride, stride), (pad, pad), dilation)
        self.bn(c_out)
        return out

    def sep_conv(self, c_in: int, c_out: int, h: int, w: int, kernel: int, stride: int = 1,
                 dilation: int = 1) -> tuple[int, int]:
        """``ops.SepConv``: depthwise then pointwise, then BN."""
        pad = dilation * (kernel - 1) // 2
        h, w = self.conv(c_in, c_in, h, w, (kernel, kernel), (stride, stride), (pad, pad), dilation, groups=c_in)
        h, w = self.conv(c_in, c_out, h, w)
        self.bn(c_out)
        return h, w

    def factorized_reduce(self, c_in: int, c_out: int, h: int, w: int) -> tuple[int, int]:
        """``ops.FactorizedReduce``: two stride-2 1x1 convs and a BN."""
        out = self.conv(c_in, c_out // 2, h, w, stride=(2, 2))
        self.conv(c_in, c_out - c_out // 2, h, w, stride=(2, 2))
        self.bn(c_out)
        return out

    def op(self, name: str, c_in: int, c_out: int, stride: int, h: int, w: int) -> tuple[int, int]:
        """Add op ``name`` of the registry; returns the output (h, w)."""
        if name not in _OPS:
            raise KeyError(f"unknown op {name!r}; known: {', '.join(sorted(_OPS))}")
        return _OPS[name](self, c_in, c_out, stride, h, w)


def _same(h: int, w: int, stride: int) -> tuple[int, int]:
    """Output size of a 'same'-padded window with ``stride``."""
    return (h + stride - 1) // stride, (w + stride - 1) // stride


def _none(t: Tally, c_in: int, c_out: int, stride: int, h: int, w: int) -> tuple[int, int]:
    return _same(h, w, stride)


def _skip(t: Tally, c_in: int, c_out: int, stride: int, h: int, w: int) -> tuple[int, int]:
    if stride == 1 and c_in == c_out:
        return h, w
    if stride == 1:
        return t.relu_conv_bn(c_in, c_out, h, w)
    return t.factorized_reduce(c_in, c_out, h, w)


def _pool(kernel: int) -> Callable[..., tuple[int, int]]:
    def cost(t: Tally, c_in: int, c_out: int, stride: int, h: int, w: int) -> tuple[int, int]:
        h, w = conv_out(h, kernel, stride, kernel // 2), conv_out(w, kernel, stride, kernel // 2)
        if c_in != c_out:
            t.conv(c_in, c_out, h, w)
            t.bn(c_out)
        return h, w
    return cost


def _conv(kernel: int, dilation: int = 1) -> Callable[..., tuple[int, int]]:
    def cost(t: Tally, c_in: int, c_out: int, stride: int, h: int, w: int) -> tuple[int, int]:
        return t.relu_conv_bn(c_in, c_out, h, w, kernel, stride, dilation)
    return cost


def bottleneck_width(kernel: int, c_out: int) -> int:
    """Inner channels of a factorized conv: 3/8 of ``c_out`` for 1x3-3x1, 1/4 otherwise (0: none)."""
    return 3 * c_out // 8 if kernel == 3 else c_out // 4


def _factorized(kernel: int) -> Callable[..., tuple[int, int]]:
    def cost(t: Tally, c_in: int, c_out: int, stride: int, h: int, w: int) -> tuple[int, int]:
        inner = bottleneck_width(kernel, c_out)
        mid = inner or c_out
        if inner:
            t.relu_conv_bn(c_in, inner, h, w)
        pad = kernel // 2
        h, w = t.conv(inner or c_in, mid, h, w, (1, kernel), (1, stride), (0, pad))
        t.bn(mid)
        h, w = t.conv(mid, mid, h, w, (kernel, 1), (stride, 1), (pad, 0))
        t.bn(mid)
        if inner:
            t.relu_conv_bn(inner, c_out, h, w)
        return h, w
    return cost


def _stacked_sep(kernel: int) -> Callable[..., tuple[int, int]]:
    def cost(t: Tally, c_in: int, c_out: int, stride: int, h: int, w: int) -> tuple[int, int]:
        h, w = t.sep_conv(c_in, c_out, h, w, kernel, stride)
        return t.sep_conv(c_out, c_out, h, w, kernel)
    return cost


def _dil_sep(kernel: int) -> Callable[..., tuple[int, int]]:
    def cost(t: Tally, c_in: int, c_out: int, stride: int, h: int, w: int) -> tuple[int, int]:
        return t.sep_conv(c_in, c_out, h, w, kernel, stride, dilation=2)
    return cost


_OPS: dict[str, Callable[..., tuple[int, int]]] = {
    "none": _none, "skip_connect": _skip,
    "avg_pool_3x3": _pool(3), "max_pool_3x3": _pool(3), "max_pool_5x5": _pool(5), "max_pool_7x7": _pool(7),
    "conv_1x1": _conv(1), "conv_3x3": _conv(3), "conv_3x3_dil2": _conv(3, 2),
    "nor_conv_1x1": _conv(1), "nor_conv_3x3": _conv(3),
    "conv_1x3_3x1": _factorized(3), "conv_1x7_7x1": _factorized(7),
    "sep_conv_3x3": _stacked_sep(3), "sep_conv_5x5": _stacked_sep(5), "sep_conv_7x7": _stacked_sep(7),
    "dil_conv_3x3": _dil_sep(3), "dil_conv_5x5": _dil_sep(5),
}
assert set(_OPS) == set(OP_NAMES)
