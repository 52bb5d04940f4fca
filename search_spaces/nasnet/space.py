"""NASNet search space: normal + reduction cells of B blocks over a chosen op vocabulary.

Vocabularies: ``nasnet`` (the 13 ops of Zoph et al. 2018), ``amoebanet`` (the 8 of Real et al.
2019) and ``darts`` (the 8 of Liu et al. 2019, with ``none``); B is 5, or 4 for ``darts``. A cell
concatenates the block outputs no other block reads (NASNet, AmoebaNet) or all of them (DARTS).
Mutations follow Real et al. 2019: a hidden-state mutation re-points one input of one block to
another earlier state (so no cycle can form), an op mutation replaces one op, and with probability
0.05 the child is the parent unchanged.

One-shot search (``oneshot_*``, ``build_supernet``): a DARTS supernet (``supernet.py``) with an edge
from every earlier state to every block; a genotype is the path that sets, per block, the edges of
its two inputs (see :meth:`NASNetSpace.oneshot_path` and :func:`path_ops`).
"""

from __future__ import annotations

import random
from typing import Any, Mapping

from optuna.distributions import CategoricalDistribution

from nas.config import Field
from nas.space import Cost, SearchSpace, Task, check_params, path_ops  # noqa: F401 (path_ops: its home was here)
from search_spaces.nasnet.genotype import KNOWN, Block, NASNetGenotype, all_states, unused_states
from search_spaces.nasnet.macro import PRESETS, Layer, plan_network, run
from search_spaces.op_costs import Tally

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "nasnet": ("skip_connect", "conv_1x3_3x1", "conv_1x7_7x1", "conv_3x3_dil2", "avg_pool_3x3", "max_pool_3x3",
               "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5",
               "sep_conv_7x7"),
    "amoebanet": ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "avg_pool_3x3", "max_pool_3x3",
                  "dil_conv_3x3", "conv_1x7_7x1"),
    "darts": ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5"),
}
IDENTITY_PROB = 0.05
CELLS = ("normal", "reduce")
UNUSED = -1  # a one-shot path's unused edge (``search_spaces.supernet.UNUSED``, without torch)


def _edge_inputs(plan: Any, task: Task, blocks: int) -> dict[int, list[list[tuple]]]:
    """Per cell type (0 normal, 1 reduce) and cell of ``plan``, per state: (shape, stride, filters) of
    the ops reading it (``plan`` is of a genotype whose first block reads states 0 and 1)."""
    shape = tuple(task.input_shape)
    for stem in plan.stems:
        shape = run(Tally(), stem, shape)  # type: ignore[arg-type]
    inputs: dict[int, list[list[tuple]]] = {0: [], 1: []}
    for cell in plan.cells:
        states = [(layer.c_in, *shape[1:]) for _, layer in cell.ops[:2]] + [(cell.filters, *cell.out[1:])] * blocks
        inputs[cell.reduction].append([(state, 2 if cell.reduction and i < 2 else 1, cell.filters)
                                       for i, state in enumerate(states)])
        shape = cell.out
    return inputs


class NASNetSpace(SearchSpace[NASNetGenotype]):
    """Cells over a vocabulary, built into a preset's macro network."""

    name = "nasnet"
    genotype = NASNetGenotype
    PRESETS = PRESETS
    DEFAULT_PRESET = "proxy"
    WIDTH_OPTION = "filters"  # what `nas compare` scales to match compute
    DEPTH_OPTION = "cells"  # what `nas compare` changes when no width will do (the cells are the genotype's)
    OPTIONS = {
        "vocabulary": Field(str, default="nasnet", choices=tuple(VOCABULARIES),
                            help="the ops a cell may use: NASNet's, AmoebaNet's or DARTS' set"),
        "blocks": Field(int, default=0, min=0, max=8, help="blocks per cell (0: 5, or 4 for darts)"),
        "filters": Field(int, default=0, min=0, help="F, filters of the first stack (0: the preset's)"),
        "cells": Field(int, default=0, min=0, help="N, normal cells per stack (0: the preset's)"),
        "auxiliary": Field(bool, default=False, help="add an auxiliary head (never counted in params)"),
        "drop_path": Field(float, default=0.0, min=0.0, max=0.9, help="largest drop-path probability"),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.vocabulary = VOCABULARIES[self.options["vocabulary"]]
        self.blocks = self.options["blocks"] or (4 if self.options["vocabulary"] == "darts" else 5)
        self.concat_rule = all_states if self.options["vocabulary"] == "darts" else unused_states
        self.macro = dict(PRESETS[self.preset])
        for key in ("filters", "cells"):
            self.macro[key] = self.options[key] or self.macro[key]
        self._distributions = self._make_distributions()

    def known(self) -> dict[str, NASNetGenotype]:
        return dict(KNOWN)

    def baselines(self) -> dict[str, NASNetGenotype]:
        """ResNet- and VGG-style cells in the NASNet skeleton (``search_spaces.nasnet.baselines``)."""
        from search_spaces.nasnet.baselines import BASELINES

        return dict(BASELINES)

    def contains(self, genotype: NASNetGenotype) -> bool:
        """Whether the flat params can express ``genotype`` (blocks, ops, concatenation rule)."""
        return (genotype.blocks == self.blocks and genotype.ops() <= set(self.vocabulary)
                and genotype.normal_concat == self.concat_rule(genotype.normal)
                and genotype.reduce_concat == self.concat_rule(genotype.reduce))

    # ----- search operators ------------------------------------------------------------------
    def _genotype(self, normal: tuple[Block, ...], reduce: tuple[Block, ...]) -> NASNetGenotype:
        return NASNetGenotype(normal, self.concat_rule(normal), reduce, self.concat_rule(reduce))

    def _random_cell(self, rng: random.Random) -> tuple[Block, ...]:
        return tuple(tuple((rng.randrange(b + 2), rng.choice(self.vocabulary)) for _ in range(2))  # type: ignore[misc]
                     for b in range(self.blocks))

    def sample(self, rng: random.Random) -> NASNetGenotype:
        return self._genotype(self._random_cell(rng), self._random_cell(rng))

    def mutate(self, genotype: NASNetGenotype, rng: random.Random) -> NASNetGenotype:
        """Identity (p=0.05), else a hidden-state or an op mutation of one input of one block."""
        if rng.random() < IDENTITY_PROB:
            return genotype
        cells = {"normal": list(genotype.normal), "reduce": list(genotype.reduce)}
        cell = rng.choice(CELLS)
        b = rng.randrange(len(cells[cell]))
        side = rng.randrange(2)
        source, op = cells[cell][b][side]
        if rng.random() < 0.5:
            source = rng.choice([s for s in range(b + 2) if s != source])
        else:
            op = rng.choice([o for o in self.vocabulary if o != op] or [op])
        pairs = list(cells[cell][b])
        pairs[side] = (source, op)
        cells[cell][b] = (pairs[0], pairs[1])
        return self._genotype(tuple(cells["normal"]), tuple(cells["reduce"]))

    def crossover(self, a: NASNetGenotype, b: NASNetGenotype, rng: random.Random) -> NASNetGenotype:
        """Each block of each cell from either parent (block positions line up, so inputs stay valid)."""
        normal = tuple(x if rng.random() < 0.5 else y for x, y in zip(a.normal, b.normal))
        reduce = tuple(x if rng.random() < 0.5 else y for x, y in zip(a.reduce, b.reduce))
        return self._genotype(normal, reduce)

    # ----- flat params -------------------------------------------------------------------------
    def _make_distributions(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for cell in CELLS:
            for b in range(self.blocks):
                for side in "ab":
                    out[f"{cell}_{b}{side}_input"] = CategoricalDistribution(tuple(range(b + 2)))
                    out[f"{cell}_{b}{side}_op"] = CategoricalDistribution(self.vocabulary)
        return out

    def distributions(self) -> dict[str, Any]:
        return dict(self._distributions)

    def to_params(self, genotype: NASNetGenotype) -> dict[str, Any]:
        if genotype.blocks != self.blocks:
            raise ValueError(f"params: genotype has {genotype.blocks} blocks per cell, the space {self.blocks}")
        params = {}
        for cell, blocks in zip(CELLS, (genotype.normal, genotype.reduce)):
            for b, block in enumerate(blocks):
                for side, (source, op) in zip("ab", block):
                    params[f"{cell}_{b}{side}_input"], params[f"{cell}_{b}{side}_op"] = source, op
        return params

    def from_params(self, params: Mapping[str, Any]) -> NASNetGenotype:
        check_params(params, self._distributions)

        def cell(name: str) -> tuple[Block, ...]:
            return tuple(tuple((params[f"{name}_{b}{s}_input"], params[f"{name}_{b}{s}_op"]) for s in "ab")  # type: ignore[misc]
                         for b in range(self.blocks))
        return self._genotype(cell("normal"), cell("reduce"))

    # ----- model -------------------------------------------------------------------------------
    def plan(self, genotype: NASNetGenotype, task: Task | None = None) -> Any:
        return plan_network(genotype, self.macro, task or self.default_task(), self.options["auxiliary"])

    def build(self, genotype: NASNetGenotype, task: Task | None = None) -> Any:
        from search_spaces.nasnet.build import NASNetNetwork

        return NASNetNetwork(self.plan(genotype, task), self.options["drop_path"])

    def cost(self, genotype: NASNetGenotype, task: Task | None = None) -> Cost:
        plan = self.plan(genotype, task)
        return Cost(plan.params, plan.macs)

    def latency_blocks(self, genotype: NASNetGenotype, task: Task | None = None) -> list[str]:
        from search_spaces.nasnet.latency import network_blocks

        return network_blocks(genotype, self.macro, task or self.default_task())

    def latency_graph_terms(self, genotype: NASNetGenotype, task: Task | None = None, rules: Any = None) -> list[str]:
        from search_spaces.nasnet.kernels import graph_terms

        return list(graph_terms(genotype, tuple(sorted(self.macro.items())), task or self.default_task(), rules))

    def latency_cover(self) -> list[NASNetGenotype]:
        from search_spaces.nasnet.latency import cover

        return cover(self)

    def latency_module(self, key: str) -> Any:
        from search_spaces.nasnet.latency import module

        return module(key)

    # ----- one-shot --------------------------------------------------------------------------------
    def _edge(self, cell: int, block: int, state: int) -> int:
        """Position of the edge state -> block of cell type ``cell`` (0 normal, 1 reduce) in a path."""
        return cell * self.blocks * (self.blocks + 3) // 2 + block * (block + 3) // 2 + state

    def oneshot_edges(self) -> list[tuple[str, tuple[str, ...]]]:
        """Per cell type and block j an edge ``normal/j:i`` / ``reduce/j:i`` from every earlier state i
        (0, 1: the cell inputs; 2 + b: block b), B(B+3)/2 per cell type, each with the vocabulary."""
        return [(f"{cell}/{j}:{i}", self.vocabulary)
                for cell in CELLS for j in range(self.blocks) for i in range(j + 2)]

    def oneshot_path(self, genotype: NASNetGenotype) -> list[int]:
        """Per edge the op a block applies to that state, ``-1`` where it does not read the state;
        a block reading one state twice puts both its ops on that edge (:func:`path_ops`).

        Every genotype the space contains is a path, and the supernet runs exactly its network. A path
        keeps each block's two inputs but not their order: :meth:`oneshot_from_path` lists them by
        state (a state read twice: as the genotype did), which changes neither the network's output
        nor ``arch_id``.

        Raises:
            ValueError: the space does not contain ``genotype`` (blocks, ops, concatenation rule).
        """
        if not self.contains(genotype):
            raise ValueError(f"one-shot path: {genotype.to_text()} is outside the space ({self.blocks} blocks, "
                             f"ops of {self.options['vocabulary']!r}, concatenating {self.concat_rule.__name__})")
        n = len(self.vocabulary)
        path = [UNUSED] * (self.blocks * (self.blocks + 3))
        for c, blocks in enumerate((genotype.normal, genotype.reduce)):
            for j, ((a, op_a), (b, op_b)) in enumerate(blocks):
                x, y = self.vocabulary.index(op_a), self.vocabulary.index(op_b)
                if a == b:
                    path[self._edge(c, j, a)] = n + x * n + y
                else:
                    path[self._edge(c, j, a)], path[self._edge(c, j, b)] = x, y
        return path

    def oneshot_from_path(self, path: list[int]) -> NASNetGenotype:
        """The genotype of a path, each block's inputs in state order; ``ValueError`` unless every block
        has exactly two inputs."""
        n, edges = len(self.vocabulary), self.blocks * (self.blocks + 3)
        if len(path) != edges:
            raise ValueError(f"one-shot path: {len(path)} entries, the space has {edges} edges")
        cells = []
        for c, cell in enumerate(CELLS):
            blocks = []
            for j in range(self.blocks):
                pairs = tuple((i, self.vocabulary[k])
                              for i in range(j + 2) for k in path_ops(path[self._edge(c, j, i)], n))
                if len(pairs) != 2:
                    raise ValueError(f"one-shot path: {cell} block {j} has {len(pairs)} inputs, needs 2")
                blocks.append(pairs)
            cells.append(tuple(blocks))
        return self._genotype(cells[0], cells[1])  # type: ignore[arg-type]

    def oneshot_derive(self, weights: list[list[float]], prevent_collapse: bool = True) -> NASNetGenotype:
        """DARTS's rule: per block the two incoming edges whose strongest op other than ``none`` weighs
        most, each with that op (listed by state). With ``prevent_collapse``, a cell type whose chosen
        ops are all parameter-free (no ``conv`` in the name) takes, on the kept edge and convolution
        that weigh most, that convolution (the inputs stay)."""
        n = len(self.vocabulary)
        if len(weights) != self.blocks * (self.blocks + 3) or any(len(row) != n for row in weights):
            raise ValueError(f"one-shot weights: need {self.blocks * (self.blocks + 3)} rows of {n} op weights")
        ops = [k for k, op in enumerate(self.vocabulary) if op != "none"]
        convs = [k for k in ops if "conv" in self.vocabulary[k]]
        cells = []
        for c in range(len(CELLS)):
            chosen = []  # per block, [state, op index] of its two inputs
            for j in range(self.blocks):
                rows = [weights[self._edge(c, j, i)] for i in range(j + 2)]
                best = [max(ops, key=row.__getitem__) for row in rows]
                kept = sorted(sorted(range(j + 2), key=lambda i: -rows[i][best[i]])[:2])
                chosen.append([[i, best[i]] for i in kept])
            if prevent_collapse and convs and not any(k in convs for block in chosen for _, k in block):
                j, s, k = max(((j, s, k) for j, block in enumerate(chosen) for s in range(2) for k in convs),
                              key=lambda t: weights[self._edge(c, t[0], chosen[t[0]][t[1]][0])][t[2]])
                chosen[j][s][1] = k
            cells.append(tuple(tuple((i, self.vocabulary[k]) for i, k in block) for block in chosen))
        return self._genotype(cells[0], cells[1])  # type: ignore[arg-type]

    def oneshot_fair(self, rng: random.Random) -> list[NASNetGenotype]:
        """FairNAS for cells: ``len(vocabulary)`` genotypes; each draws every block's two inputs afresh
        (two distinct states), and each op slot of every block runs through a random permutation of
        the vocabulary, so every op fills every slot once in the group."""
        n = len(self.vocabulary)
        perms = [[[rng.sample(self.vocabulary, n) for _ in range(2)] for _ in range(self.blocks)] for _ in CELLS]
        out = []
        for k in range(n):
            cells = [tuple(tuple((i, cell[j][s][k]) for s, i in enumerate(sorted(rng.sample(range(j + 2), 2))))
                           for j in range(self.blocks)) for cell in perms]
            out.append(self._genotype(cells[0], cells[1]))  # type: ignore[arg-type]
        return out

    def build_supernet(self, task: Task | None = None) -> Any:
        from search_spaces.nasnet.supernet import build_supernet

        return build_supernet(self, task or self.default_task())

    def oneshot_latency(self, table: Any, task: Task | None = None) -> tuple[float, list[list[float]]]:
        """(ms of what every genotype runs: stems, preprocessing, block sums, concatenations, head;
        per edge and op, ms of that op in every cell of the edge's type), the table's prediction as a
        sum over a path's edges (a pair code's two ops: both entries). Only for ``all_states``
        (darts): under ``unused_states`` what a cell concatenates, and so what the next cells
        preprocess, depends on the whole cell, not on one edge."""
        if self.concat_rule is not all_states:
            raise NotImplementedError("nasnet: one-shot latency needs vocabulary 'darts' (with unused-states "
                                      "concatenation a cell's width depends on the whole cell)")
        from collections import Counter

        from search_spaces.nasnet.latency import network_blocks, step

        task = task or self.default_task()
        first = self.vocabulary[0]
        cell = tuple(((0, first), (1, first)) for _ in range(self.blocks))
        reference = self._genotype(cell, cell)  # type: ignore[arg-type]
        inputs = _edge_inputs(self.plan(reference, task), task, self.blocks)

        def keys(c: int, i: int, op: str) -> list[str]:
            return [step(Layer("op", state[0], filters, name=op, stride=stride), state)[0]
                    for state, stride, filters in (cell[i] for cell in inputs[c])]

        ops = Counter(key for c in (0, 1) for _ in range(self.blocks) for i in (0, 1) for key in keys(c, i, first))
        fixed = list((Counter(network_blocks(reference, self.macro, task)) - ops).elements())
        per_edge = [[table.additive(keys(c, i, op)) for op in self.vocabulary]
                    for c in (0, 1) for j in range(self.blocks) for i in range(j + 2)]
        return table.additive(fixed, fixed=True), per_edge

    def details(self, genotype: NASNetGenotype) -> dict[str, Any]:
        return {"text": genotype.to_text(), "vocabulary": self.options["vocabulary"],
                "filters": self.macro["filters"], "cells_per_stack": self.macro["cells"],
                "style": self.macro["style"]}

    def label(self, genotype: NASNetGenotype) -> str:
        return genotype.to_text()

    def draw(self, genotype: NASNetGenotype, path: str) -> None:
        from search_spaces.nasnet.draw import draw_cells

        draw_cells(genotype, path)
