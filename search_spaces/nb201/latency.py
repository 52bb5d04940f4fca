"""NAS-Bench-201 blocks for latency tables (torch-free): stem, edge ops, node sums, residual
reductions and head, at their real shapes (``SearchSpace.latency_blocks`` protocol)."""

from __future__ import annotations

from typing import Any

from nas.block_keys import DEAD, block_key
from nas.space import Task
from search_spaces.nb201.genotype import EDGES, OPS, NB201Genotype


def _half(size: int) -> int:
    return (size + 1) // 2


def reachable(genotype: NB201Genotype) -> tuple[set[int], set[int]]:
    """Nodes fed by the cell input, and nodes that feed the cell output, through non-``none`` edges."""
    edges = [(src, dst) for (dst, src), op in zip(EDGES, genotype.ops) if op != "none"]
    fed, feeding = {0}, {3}
    for src, dst in sorted(edges, key=lambda e: e[1]):
        if src in fed:
            fed.add(dst)
    for src, dst in sorted(edges, key=lambda e: -e[0]):
        if dst in feeding:
            feeding.add(src)
    return fed, feeding


def constant_output(genotype: NB201Genotype) -> bool:
    """Whether the cell's output does not depend on its input (no path of non-``none`` edges)."""
    return 3 not in reachable(genotype)[0]


def cell_blocks(genotype: NB201Genotype, c: int, h: int, w: int) -> list[str]:
    """Edge ops (``none`` edges are skipped by the module) and each node's sum (or zeros when no
    edge into it is live); a block off every input-to-output path is marked dead."""
    shape = (c, h, w)
    fed, feeding = reachable(genotype)
    keys = []
    for dst in (1, 2, 3):
        terms = [(src, op) for (d, src), op in zip(EDGES, genotype.ops) if d == dst and op != "none"]
        for src, op in terms:
            keys.append(_mark(block_key("op", (op, c, c, 1), [shape]), src in fed and dst in feeding))
        if not terms:
            keys.append(_mark(block_key("zeros", (), [shape]), False))
        elif len(terms) > 1:
            keys.append(_mark(block_key("sum", (len(terms),), [shape] * len(terms)), dst in fed and dst in feeding))
    return keys


def _mark(key: str, live: bool) -> str:
    return key if live else DEAD + key


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
    if constant_output(genotype):  # the whole network computes a constant: compilers fold it all
        keys = [k if k.startswith(DEAD) else DEAD + k for k in keys]
    return keys


def oneshot_latency(table: Any, task: Task, channels: int, cells: int) -> tuple[float, list[list[float]]]:
    """(ms of stem, reductions, head and the cells' node sums; per edge and op, ms of that op in every
    cell): the table's prediction as a sum over edges (the sums priced as if every edge were live)."""
    c_in, h, w = task.input_shape
    c = channels
    fixed = [block_key("nb201_stem", (c_in, c), [(c_in, h, w)])]
    shapes = [(c, h, w)]
    for _ in range(2):
        fixed.append(block_key("nb201_reduction", (c, 2 * c), [(c, h, w)]))
        c, h, w = 2 * c, _half(h), _half(w)
        shapes.append((c, h, w))
    fixed.append(block_key("nb201_head", (c, task.num_classes), [(c, h, w)]))
    fixed += [block_key("sum", (n,), [s] * n) for s in shapes for n in (2, 3)] * cells
    per_op = {op: 0.0 if op == "none" else table.additive(
        [block_key("op", (op, s[0], s[0], 1), [s]) for s in shapes] * cells) for op in OPS}
    return table.additive(fixed, fixed=True), [[per_op[op] for op in OPS] for _ in EDGES]


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
