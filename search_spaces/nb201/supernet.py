"""The NAS-Bench-201 supernet: the benchmark's macro network with all five ops on every cell edge.

Every cell holds its own :class:`~search_spaces.supernet.MixedEdge` per edge (the standalone network
has separate weights per cell too); the six edges' choice is shared by all cells, as a genotype is.
Stem, residual reductions and head are the standalone network's modules, under the same names.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.space import Task
from search_spaces.nb201.build import add_macro
from search_spaces.nb201.genotype import EDGES, OPS, NB201Genotype
from search_spaces.supernet import Arch, MixedEdge, add_terms, path_state


class SuperCell(nn.Module):
    """A cell whose six edges carry every op: node j = sum over i < j of edge(i->j)(node i)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(OPS, channels, channels, 1) for _ in EDGES)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        nodes = [x]
        for dst in (1, 2, 3):
            terms = []
            for i, (d, src) in enumerate(EDGES):
                if d == dst:
                    h = self.edges[i](nodes[src], arch[i])
                    if h is not None:
                        terms.append(h)
            nodes.append(add_terms(terms, x))
        return nodes[3]


class NB201Supernet(nn.Module):
    """Stem, ``cells`` super-cells at C, reduction, at 2C, reduction, at 4C, head; ``forward(x, arch)``
    with one choice per edge of ``EDGES`` (see :mod:`search_spaces.supernet`)."""

    def __init__(self, task: Task, channels: int, cells: int) -> None:
        super().__init__()
        add_macro(self, task, channels, cells, SuperCell)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:  # x: (B, C, H, W)
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x, arch) if isinstance(layer, SuperCell) else layer(x)
        return self.classifier(self.head(x))

    def standalone_state(self, genotype: NB201Genotype) -> dict[str, torch.Tensor]:
        """The state dict of ``build(genotype)`` (same task and widths) holding this supernet's weights."""
        chosen = [OPS.index(op) for op in genotype.ops]
        edges = {f"cells.{i}.edges.{e}": (f"cells.{i}.edges.{e}", chosen[e])
                 for i, layer in enumerate(self.cells) if isinstance(layer, SuperCell) for e in range(len(EDGES))}
        return path_state(self.state_dict(), edges)


def build_supernet(task: Task, channels: int, cells: int) -> NB201Supernet:
    """The supernet of the space's macro network for ``task``."""
    return NB201Supernet(task, channels, cells)
