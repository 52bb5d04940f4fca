"""NASNet search space: normal + reduction cells of B blocks over a chosen op vocabulary.

Vocabularies: ``nasnet`` (the 13 ops of Zoph et al. 2018), ``amoebanet`` (the 8 of Real et al.
2019) and ``darts`` (the 8 of Liu et al. 2019, with ``none``); B is 5, or 4 for ``darts``. A cell
concatenates the block outputs no other block reads (NASNet, AmoebaNet) or all of them (DARTS).
Mutations follow Real et al. 2019: a hidden-state mutation re-points one input of one block to
another earlier state (so no cycle can form), an op mutation replaces one op, and with probability
0.05 the child is the parent unchanged.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

from optuna.distributions import CategoricalDistribution

from nas.config import Field
from nas.space import Cost, SearchSpace, Task, check_params
from search_spaces.nasnet.genotype import KNOWN, Block, NASNetGenotype, all_states, unused_states
from search_spaces.nasnet.macro import PRESETS, plan_network

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


class NASNetSpace(SearchSpace[NASNetGenotype]):
    """Cells over a vocabulary, built into a preset's macro network."""

    name = "nasnet"
    genotype = NASNetGenotype
    PRESETS = PRESETS
    DEFAULT_PRESET = "proxy"
    WIDTH_OPTION = "filters"  # what `nas compare` scales to match compute
    DEPTH_OPTION = "cells"  # what `nas compare` changes when no width will do (the cells are the genotype's)
    OPTIONS = {
        "vocabulary": Field(str, default="nasnet", choices=tuple(VOCABULARIES)),
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

    def latency_graph_terms(self, genotype: NASNetGenotype, task: Task | None = None) -> list[str]:
        from search_spaces.nasnet.kernels import graph_terms

        return list(graph_terms(genotype, tuple(sorted(self.macro.items())), task or self.default_task()))

    def latency_cover(self) -> list[NASNetGenotype]:
        from search_spaces.nasnet.latency import cover

        return cover(self)

    def latency_module(self, key: str) -> Any:
        from search_spaces.nasnet.latency import module

        return module(key)

    def details(self, genotype: NASNetGenotype) -> dict[str, Any]:
        return {"text": genotype.to_text(), "vocabulary": self.options["vocabulary"],
                "filters": self.macro["filters"], "cells_per_stack": self.macro["cells"],
                "style": self.macro["style"]}

    def label(self, genotype: NASNetGenotype) -> str:
        return genotype.to_text()

    def draw(self, genotype: NASNetGenotype, path: str) -> None:
        from search_spaces.nasnet.draw import draw_cells

        draw_cells(genotype, path)
