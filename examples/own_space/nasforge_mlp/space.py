"""The MLP search space: the nasforge protocol (``nas.space.SearchSpace``) in its smallest complete form.

What a space must provide, and where it is here:

- identity: ``name`` (the entry-point name), ``genotype`` (the class), ``PRESETS`` with ``input_shape``
  and ``num_classes``, ``DEFAULT_PRESET``, optional ``OPTIONS`` (the run spec's ``[space]`` keys);
- search operators, every random choice from the given ``random.Random``: ``sample``, ``mutate``
  (returns a new genotype, never changes its argument), ``crossover``;
- flat Optuna params with fixed keys, so that every Optuna sampler works: ``distributions``,
  ``to_params``, ``from_params`` (``ValueError`` for values outside the space);
- the model: ``build`` (imports torch lazily, from ``build.py``) and ``cost`` (params and
  multiply-accumulates from the genotype alone, equal to what the built module counts).

Everything else (``known``, ``parse``, ``details``, ``label``, ``neighbours``) is optional. This module
imports no torch: the search driver never loads it.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

from optuna.distributions import CategoricalDistribution

from nas.config import Field
from nas.space import Cost, SearchSpace, Task, check_params
from nasforge_mlp.genotype import ACTIVATIONS, MAX_LAYERS, WIDTHS, MLPGenotype


class MLPSpace(SearchSpace[MLPGenotype]):
    """Multilayer perceptrons on flattened images: 1 to ``max_layers`` hidden layers, each of a width
    from ``WIDTHS``, with one activation for all.

    Options: ``preset`` (``digits``, ``fashion-mnist``) and ``max_layers`` (the most hidden layers searched).
    """

    name = "mlp"
    genotype = MLPGenotype
    PRESETS = {
        "digits": {"input_shape": (1, 8, 8), "num_classes": 10},
        "fashion-mnist": {"input_shape": (1, 28, 28), "num_classes": 10},
    }
    DEFAULT_PRESET = "digits"
    OPTIONS = {"max_layers": Field(int, default=3, min=1, max=MAX_LAYERS, help="most hidden layers searched")}
    EVALUATOR_DEFAULTS = {"train": {"optimizer": "adamw", "lr": 0.003}}  # spec values win

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.max_layers: int = self.options["max_layers"]
        self._distributions = {  # one fixed key per possible layer: unused ones still get a value
            "depth": CategoricalDistribution(tuple(range(1, self.max_layers + 1))),
            **{f"width_{k}": CategoricalDistribution(WIDTHS) for k in range(self.max_layers)},
            "activation": CategoricalDistribution(ACTIVATIONS),
        }

    def known(self) -> dict[str, MLPGenotype]:
        """Two hand-made networks, named as published ones would be."""
        return {"mlp-small": MLPGenotype((64,)), "mlp-funnel": MLPGenotype((128, 64, 32), "gelu")}

    def parse(self, text: str) -> MLPGenotype:
        """A genotype from its text form (``nas describe --space mlp --arch 64-32:relu``)."""
        return MLPGenotype.parse(text)

    def contains(self, genotype: MLPGenotype) -> bool:
        return len(genotype.widths) <= self.max_layers

    # ----- search operators --------------------------------------------------------------------
    def sample(self, rng: random.Random) -> MLPGenotype:
        depth = rng.randint(1, self.max_layers)
        return MLPGenotype(tuple(rng.choice(WIDTHS) for _ in range(depth)), rng.choice(ACTIVATIONS))

    def mutate(self, genotype: MLPGenotype, rng: random.Random) -> MLPGenotype:
        """One change: a layer's width, the activation, or a layer added or removed."""
        widths, activation = list(genotype.widths), genotype.activation
        move = rng.choice(("width", "activation", "depth"))
        if move == "width":
            k = rng.randrange(len(widths))
            widths[k] = rng.choice([w for w in WIDTHS if w != widths[k]])
        elif move == "activation":
            activation = rng.choice([a for a in ACTIVATIONS if a != activation])
        elif len(widths) < self.max_layers and (len(widths) == 1 or rng.random() < 0.5):
            widths.insert(rng.randrange(len(widths) + 1), rng.choice(WIDTHS))
        elif len(widths) > 1:
            del widths[rng.randrange(len(widths))]
        else:  # a single layer and nothing to add (max_layers 1): change its width instead
            widths[0] = rng.choice([w for w in WIDTHS if w != widths[0]])
        return MLPGenotype(tuple(widths), activation)

    def crossover(self, a: MLPGenotype, b: MLPGenotype, rng: random.Random) -> MLPGenotype:
        """The depth of either parent; each layer's width from whichever parent has that layer."""
        depth = len(rng.choice((a, b)).widths)
        widths = [rng.choice([p.widths[k] for p in (a, b) if k < len(p.widths)]) for k in range(depth)]
        return MLPGenotype(tuple(widths), rng.choice((a.activation, b.activation)))

    def distributions(self) -> dict[str, Any]:
        return dict(self._distributions)

    def to_params(self, genotype: MLPGenotype) -> dict[str, Any]:
        padded = genotype.widths + (WIDTHS[0],) * (self.max_layers - len(genotype.widths))
        return {"depth": len(genotype.widths), **{f"width_{k}": w for k, w in enumerate(padded)},
                "activation": genotype.activation}

    def from_params(self, params: Mapping[str, Any]) -> MLPGenotype:
        check_params(params, self._distributions)
        return MLPGenotype(tuple(params[f"width_{k}"] for k in range(params["depth"])), params["activation"])

    # ----- model -------------------------------------------------------------------------------
    def build(self, genotype: MLPGenotype, task: Task | None = None) -> Any:
        from nasforge_mlp.build import build

        return build(genotype, task or self.default_task())

    def cost(self, genotype: MLPGenotype, task: Task | None = None) -> Cost:
        """Each linear layer: ``c_in * c_out`` weights and multiply-accumulates, plus ``c_out`` biases."""
        task = task or self.default_task()
        c, h, w = task.input_shape
        sizes = [c * h * w, *genotype.widths, task.num_classes]
        macs = sum(c_in * c_out for c_in, c_out in zip(sizes, sizes[1:]))
        return Cost(macs + sum(sizes[1:]), macs)

    def details(self, genotype: MLPGenotype) -> dict[str, Any]:
        return {"string": genotype.to_string(), "hidden_layers": len(genotype.widths)}

    def label(self, genotype: MLPGenotype) -> str:
        return genotype.to_string()
