"""NAS-Bench-201 blocks for latency tables (torch-free): stem, edge ops, node sums, residual
reductions and head, at their real shapes (``SearchSpace.latency_blocks`` protocol)."""

from __future__ import annotations

from typing import Any

from nas.latency import block_key
from nas.space import Task
from search_spaces.nb201.genotype import EDGES, OPS, NB201Genotype


def _half(size: int) -> int:
    return (size + 1) // 2


def cell_blocks(genotype: NB201Genotype, c: int, h: int, w: int) -> list[str]:
    """Live edge ops and each node's sum (or zeros when no edge into it is live)."""
    shape = (c, h, w)
    keys = []
    for dst in (1, 2, 3):
        live = [op for (d, _), op in zip(EDGES, genotype.ops) if d == dst and op != "none"]
        keys += [block_key("op", (op, c, c, 1), [shape]) for op in live]
        if not live:
            keys.append(block_key("zeros", (), [shape]))
        elif len(live) > 1:
            keys.append(block_key("sum", (len(live),), [shape] * len(live)))
    return keys


def network_blocks(genotype: NB201Genotype, task: Task, channels: int, cells: int) -> list[str]:
    """Every block of the macro network in forward order."""
    c_in, h, w = task.input_shape
    c = channels
    keys = [block_key("nb201_stem", (c_in, c), [(c_in, h, w)])]
    for stage in range(3):
        if stage:
            keys.append(block_key("nb201_reduction", (c, 2 * c), [(c, h, w)]))
            c, h, w = 2 * c, _half(h), _half(w)
        keys += cell_blocks(genotype, c, h, w) * cells
    keys.append(block_key("nb201_head", (c, task.num_classes), [(c, h, w)]))
    return keys


def cover() -> list[NB201Genotype]:
    """One genotype per op on all six edges: every op at every stage, sums of 2 and 3, zeros."""
    return [NB201Genotype((op,) * len(EDGES)) for op in OPS]


def module(key: str) -> Any:
    """Torch module of an NB201 block key (imports torch)."""
    from torch import nn

    from search_spaces.latency_blocks import generic_module
    from search_spaces.nb201.build import ResidualReduction

    own = {
        "nb201_stem": lambda a: nn.Sequential(nn.Conv2d(int(a[0]), int(a[1]), 3, padding=1, bias=False),
                                              nn.BatchNorm2d(int(a[1]))),
        "nb201_reduction": lambda a: ResidualReduction(int(a[0]), int(a[1])),
        "nb201_head": lambda a: nn.Sequential(nn.BatchNorm2d(int(a[0])), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                              nn.Flatten(), nn.Linear(int(a[0]), int(a[1]))),
    }
    return generic_module(key, own)
