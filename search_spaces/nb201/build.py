"""The NAS-Bench-201 macro network: 3x3 stem, three stages of cells joined by residual reductions."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nas.space import Task
from search_spaces.nb201.genotype import EDGES, NB201Genotype
from search_spaces.ops import ReLUConvBN, drop_path, make_op


class Cell(nn.Module):
    """Node j = sum over i < j of op(i->j)(node i); the last node is the output.

    In training with ``drop_prob > 0``, each edge's output is dropped per example (drop-path, as
    DARTS does on its cells) except identity edges, which carry the cell's residual path."""

    def __init__(self, ops: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels, channels, 1) for op in ops)
        # `none` edges contribute zeros: skip them in forward instead of adding zero tensors.
        self.live = [i for i, op in enumerate(ops) if op != "none"]
        self.droppable = [not isinstance(edge, nn.Identity) for edge in self.edges]

    def forward(self, x: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        nodes = [x]
        drop = drop_prob > 0 and self.training  # Python-level: eval and export trace the plain cell
        for dst in (1, 2, 3):
            terms = []
            for i, (d, src) in enumerate(EDGES):
                if d == dst and i in self.live:
                    h = self.edges[i](nodes[src])
                    terms.append(drop_path(h, drop_prob) if drop and self.droppable[i] else h)
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[3]


class ResidualReduction(nn.Module):
    """The benchmark's ResNet basic block with stride 2: two 3x3 ReLU-conv-BN, avg-pool + 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True),
                                      nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


def add_macro(net: nn.Module, task: Task, channels: int, cells: int, make_cell: Callable[[int], nn.Module]) -> None:
    """Give ``net`` the benchmark's macro network: ``stem``, ``cells`` (``cells`` cells per stage made by
    ``make_cell(channels)``, residual reductions between stages), ``head`` and ``classifier``."""
    c_in = task.input_shape[0]
    net.stem = nn.Sequential(nn.Conv2d(c_in, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
    layers: list[nn.Module] = []
    c = channels
    for stage in range(3):
        if stage:
            layers.append(ResidualReduction(c, 2 * c))
            c *= 2
        layers.extend(make_cell(c) for _ in range(cells))
    net.cells = nn.Sequential(*layers)
    net.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net.classifier = nn.Linear(c, task.num_classes)


class NB201Network(nn.Module):
    """Stem, ``cells`` cells at C, reduction, ``cells`` at 2C, reduction, ``cells`` at 4C, pool, linear.

    ``drop_path_max`` is the largest drop-path probability; trainers set ``drop_path_prob``
    (growing linearly to the maximum over training). Neither changes the module in eval mode.
    """

    def __init__(self, genotype: NB201Genotype, task: Task, channels: int, cells: int,
                 drop_path_max: float = 0.0) -> None:
        super().__init__()
        add_macro(self, task, channels, cells, lambda c: Cell(genotype.ops, c))
        self.drop_path_max, self.drop_path_prob = drop_path_max, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x, self.drop_path_prob) if isinstance(layer, Cell) else layer(x)
        return self.classifier(self.head(x))


def build(genotype: NB201Genotype, task: Task, channels: int, cells: int, drop_path_max: float = 0.0) -> nn.Module:
    """The benchmark's network for ``genotype`` (``drop_path_max``: see :class:`NB201Network`)."""
    return NB201Network(genotype, task, channels, cells, drop_path_max)
