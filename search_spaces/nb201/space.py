"""NAS-Bench-201 search space: 5^6 = 15,625 cells; cost computed from the genotype."""

from __future__ import annotations

import random
from typing import Any, Mapping

from optuna.distributions import CategoricalDistribution

from nas.config import Field
from nas.space import Cost, SearchSpace, Task, check_params
from search_spaces.nb201.genotype import EDGES, OPS, NB201Genotype

PARAM_KEYS: tuple[str, ...] = tuple(f"edge_{dst}_{src}" for dst, src in EDGES)
_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def _half(size: int) -> int:
    """Output size of a stride-2 3x3 conv with padding 1 (and of a 2x2 ceil-mode pool)."""
    return (size + 1) // 2


class NB201Space(SearchSpace[NB201Genotype]):
    """The benchmark's cell space and macro network.

    Options: ``preset`` (``cifar10``, ``cifar100``, ``imagenet16``, ``proxy``), ``channels`` and
    ``cells`` (per stage) to override the preset's macro network, ``drop_path`` (the largest
    drop-path probability of full training; nothing changes in eval mode).
    """

    name = "nb201"
    genotype = NB201Genotype
    PRESETS = {
        "cifar10": {"input_shape": (3, 32, 32), "num_classes": 10, "channels": 16, "cells": 5},
        "cifar100": {"input_shape": (3, 32, 32), "num_classes": 100, "channels": 16, "cells": 5},
        "imagenet16": {"input_shape": (3, 16, 16), "num_classes": 120, "channels": 16, "cells": 5},
        "proxy": {"input_shape": (1, 8, 8), "num_classes": 10, "channels": 8, "cells": 1},
    }
    DEFAULT_PRESET = "cifar10"
    WIDTH_OPTION = "channels"  # what `nas compare` scales to match compute
    OPTIONS = {
        "channels": Field(int, default=0, min=0, help="channels of the first stage (0: the preset's)"),
        "cells": Field(int, default=0, min=0, help="cells per stage (0: the preset's)"),
        "drop_path": Field(float, default=0.0, min=0.0, max=0.9, help="largest drop-path probability (training only)"),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        preset = self.PRESETS[self.preset]
        self.channels = self.options["channels"] or preset["channels"]
        self.cells = self.options["cells"] or preset["cells"]
        self._distributions = {key: CategoricalDistribution(OPS) for key in PARAM_KEYS}

    def known(self) -> dict[str, NB201Genotype]:
        """The best cell of the benchmark's CIFAR-10 table and a ResNet-like cell."""
        return {
            "nb201-c10-best": NB201Genotype.parse(
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"),
            "resnet": NB201Genotype.parse(
                "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"),
        }

    def parse(self, text: str) -> NB201Genotype:
        """A genotype from the standard string form."""
        return NB201Genotype.parse(text)

    # ----- search operators --------------------------------------------------------------------
    def sample(self, rng: random.Random) -> NB201Genotype:
        return NB201Genotype(tuple(rng.choice(OPS) for _ in EDGES))

    def mutate(self, genotype: NB201Genotype, rng: random.Random) -> NB201Genotype:
        """Change the op of one random edge to another op."""
        ops = list(genotype.ops)
        edge = rng.randrange(len(ops))
        ops[edge] = rng.choice([op for op in OPS if op != ops[edge]])
        return NB201Genotype(tuple(ops))

    def neighbours(self, genotype: NB201Genotype) -> list[NB201Genotype]:
        """The 24 cells that differ in exactly one edge's op."""
        out = []
        for edge, current in enumerate(genotype.ops):
            for op in OPS:
                if op != current:
                    out.append(NB201Genotype(genotype.ops[:edge] + (op,) + genotype.ops[edge + 1:]))
        return out

    def crossover(self, a: NB201Genotype, b: NB201Genotype, rng: random.Random) -> NB201Genotype:
        """Each edge's op from either parent."""
        return NB201Genotype(tuple(x if rng.random() < 0.5 else y for x, y in zip(a.ops, b.ops)))

    def distributions(self) -> dict[str, Any]:
        return dict(self._distributions)

    def to_params(self, genotype: NB201Genotype) -> dict[str, Any]:
        return dict(zip(PARAM_KEYS, genotype.ops))

    def from_params(self, params: Mapping[str, Any]) -> NB201Genotype:
        check_params(params, self._distributions)
        return NB201Genotype(tuple(params[key] for key in PARAM_KEYS))

    # ----- model -------------------------------------------------------------------------------
    def build(self, genotype: NB201Genotype, task: Task | None = None) -> Any:
        from search_spaces.nb201.build import build

        return build(genotype, task or self.default_task(), self.channels, self.cells, self.options["drop_path"])

    def cost(self, genotype: NB201Genotype, task: Task | None = None) -> Cost:
        """Params and MACs of the macro network, layer by layer (conv and linear MACs)."""
        task = task or self.default_task()
        c_in, h, w = task.input_shape
        c = self.channels
        params, macs = c_in * c * 9 + 2 * c, c_in * c * 9 * h * w  # stem conv + BN
        for stage in range(3):
            if stage:  # residual reduction c -> 2c
                h, w = _half(h), _half(w)
                params += 9 * c * 2 * c + 9 * 4 * c * c + 2 * c * c + 2 * 2 * (2 * c)
                macs += (9 * c * 2 * c + 9 * 4 * c * c + 2 * c * c) * h * w
                c *= 2
            for op in genotype.ops:
                k = _CONV_KERNEL.get(op)
                if k:
                    params += self.cells * (c * c * k * k + 2 * c)
                    macs += self.cells * c * c * k * k * h * w
        params += 2 * c + c * task.num_classes + task.num_classes  # head BN + classifier
        macs += c * task.num_classes
        return Cost(params, macs)

    def latency_blocks(self, genotype: NB201Genotype, task: Task | None = None) -> list[str]:
        from search_spaces.nb201.latency import network_blocks

        return network_blocks(genotype, task or self.default_task(), self.channels, self.cells)

    def latency_graph_terms(self, genotype: NB201Genotype, task: Task | None = None, rules: Any = None) -> list[str]:
        from search_spaces.nb201.kernels import graph_terms

        return list(graph_terms(genotype, task or self.default_task(), self.channels, self.cells, rules))

    def latency_cover(self) -> list[NB201Genotype]:
        from search_spaces.nb201.latency import cover

        return cover()

    def latency_module(self, key: str) -> Any:
        from search_spaces.nb201.latency import module

        return module(key)

    # ----- one-shot --------------------------------------------------------------------------------
    def oneshot_edges(self) -> list[tuple[str, tuple[str, ...]]]:
        """The six cell edges, all five ops on each; every cell shares the choice."""
        return [(f"cell/{src}->{dst}", OPS) for dst, src in EDGES]

    def oneshot_path(self, genotype: NB201Genotype) -> list[int]:
        return [OPS.index(op) for op in genotype.ops]

    def oneshot_derive(self, weights: list[list[float]], prevent_collapse: bool = True) -> NB201Genotype:
        """Each edge's strongest op; a parameter-free result (no convolution left, the collapse of
        DARTS on this space) takes, with ``prevent_collapse``, the strongest convolution of any edge."""
        ops = [OPS[max(range(len(OPS)), key=row.__getitem__)] for row in weights]
        if prevent_collapse and not any(op.startswith("nor_conv") for op in ops):
            convs = [k for k, op in enumerate(OPS) if op.startswith("nor_conv")]
            edge, k = max(((e, k) for e in range(len(EDGES)) for k in convs), key=lambda ek: weights[ek[0]][ek[1]])
            ops[edge] = OPS[k]
        return NB201Genotype(tuple(ops))

    def build_supernet(self, task: Task | None = None) -> Any:
        from search_spaces.nb201.supernet import build_supernet

        return build_supernet(task or self.default_task(), self.channels, self.cells)

    def oneshot_latency(self, table: Any, task: Task | None = None) -> tuple[float, list[list[float]]]:
        from search_spaces.nb201.latency import oneshot_latency

        return oneshot_latency(table, task or self.default_task(), self.channels, self.cells)

    def details(self, genotype: NB201Genotype) -> dict[str, Any]:
        return {"string": genotype.to_string(), "channels": self.channels, "cells_per_stage": self.cells}

    def label(self, genotype: NB201Genotype) -> str:
        return genotype.to_string()

    def draw(self, genotype: NB201Genotype, path: str) -> None:
        from search_spaces.nb201.draw import draw_cell

        draw_cell(genotype, path)
