"""Torch modules for the block keys spaces share (``nas.block_keys.block_key``): ops of the registry,
plain layers and the glue between blocks (sums, concatenations, means, classifier heads).

Kinds (arguments after the kind, input shapes after ``@``):

=============================  =====================================================================
``op:NAME:C_IN:C_OUT:STRIDE``  op ``NAME`` of ``search_spaces.ops``
``conv:C_IN:C_OUT:K:S:P``      Conv2d without bias
``bn:C`` / ``relu``            BatchNorm2d / ReLU
``rcb:C_IN:C_OUT``             ReLU-1x1 conv-BN
``fr:C_IN:C_OUT``              factorized reduction
``sum:K``                      sum of K inputs
``cat:K``                      channel concatenation of K inputs
``mean:K``                     mean of K inputs
``zeros``                      zeros like the input
``pool_linear:C:CLASSES:R``    [ReLU if R] -> global average pool -> linear
=============================  =====================================================================
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from nas.block_keys import parse_key
from search_spaces.ops import FactorizedReduce, ReLUConvBN, make_op


class SumN(nn.Module):
    """Sum of the inputs."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total


class CatN(nn.Module):
    """Concatenation along channels."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class MeanN(nn.Module):
    """Mean of the inputs (RandWire's stage output over its sinks)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.stack(xs).mean(0)


class ZerosLike(nn.Module):
    """Zeros of the input's shape (a node without live inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class PoolLinear(nn.Module):
    """[ReLU] -> global average pool -> linear."""

    def __init__(self, channels: int, classes: int, relu: bool) -> None:
        super().__init__()
        self.relu = relu
        self.linear = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        if self.relu:
            x = torch.relu(x)
        return self.linear(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _ints(args: list[str]) -> list[int]:
    return [int(a) for a in args]


GENERIC: dict[str, Callable[[list[str]], nn.Module]] = {
    "op": lambda a: make_op(a[0], int(a[1]), int(a[2]), int(a[3])),
    "conv": lambda a: nn.Conv2d(*_ints(a[:2]), _ints(a)[2], _ints(a)[3], _ints(a)[4], bias=False),
    "bn": lambda a: nn.BatchNorm2d(int(a[0])),
    "relu": lambda a: nn.ReLU(inplace=False),
    "rcb": lambda a: ReLUConvBN(int(a[0]), int(a[1]), 1),
    "fr": lambda a: FactorizedReduce(int(a[0]), int(a[1])),
    "sum": lambda a: SumN(),
    "cat": lambda a: CatN(),
    "mean": lambda a: MeanN(),
    "zeros": lambda a: ZerosLike(),
    "pool_linear": lambda a: PoolLinear(int(a[0]), int(a[1]), a[2] == "1"),
}


def generic_module(key: str, own: dict[str, Callable[[list[str]], nn.Module]] | None = None) -> Any:
    """The module of ``key``: a space's ``own`` kinds first, then the shared ones."""
    kind, args, _ = parse_key(key)
    table = {**GENERIC, **(own or {})}
    if kind not in table:
        raise KeyError(f"block key {key!r}: unknown kind {kind!r}; known: {', '.join(sorted(table))}")
    return table[kind](args).eval()
