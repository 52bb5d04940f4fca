"""Differentiable one-shot controllers: ``darts``, ``gdas`` and ``drnas``.

The search itself (architecture parameters and supernet weights trained together) runs once, before
the search loop, as the run's one-shot stage (:mod:`nas.oneshot.stage`, :mod:`evaluators.oneshot`);
it leaves the final genotype and the learned probabilities in the study. This controller's sampler
then proposes, as ordinary trials for the run's evaluator: the final genotype first, then
genotypes drawn from the learned distribution (each edge's probabilities perturbed by Gumbel noise
and derived again), so a budget above 1 explores the neighbourhood the search believes in.
"""

from __future__ import annotations

import math
import random
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas.config import SpecError
from nas.controllers import Controller
from nas.controllers.history import GenotypeSampler, History
from nas.genotype import Genotype
from nas.oneshot.options import DIFFERENTIABLE, METHODS
from nas.oneshot.records import FINAL_ATTR
from nas.space import SearchSpace

NOVEL_TRIES = 200


class DistributionSampler(GenotypeSampler):
    """Proposes the one-shot search's final genotype, then samples of its learned distribution."""

    def __init__(self, space: SearchSpace, seed: int | None = None, samples: int = 0) -> None:
        super().__init__(space, seed)
        self._final: dict[str, Any] | None = None
        self._samples = samples  # proposals after the final genotype (0: no limit but the budget)

    def is_exhausted(self, study: optuna.Study) -> bool:
        return bool(self._samples) and len(self.history(study, None).seen) >= 1 + self._samples

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        self._final = study.user_attrs.get(FINAL_ATTR)
        return super().sample_relative(study, trial, search_space)

    def propose(self, history: History, rng: random.Random) -> Genotype:
        if self._final is None:  # no search result (a stage that did not run): random architectures
            return history.novel(lambda: self._space.sample(rng), NOVEL_TRIES)
        final = self._space.from_dict(self._final["genotype"])
        if final.arch_id not in history.seen:
            return final
        rows = self._final["probabilities"]
        return history.novel(lambda: self._space.oneshot_derive(_perturbed(rows, rng)), NOVEL_TRIES)


def _perturbed(rows: list[list[float]], rng: random.Random) -> list[list[float]]:
    """log p + Gumbel noise per op: the strongest choice of the result is a sample of p (per edge)."""
    return [[math.log(max(p, 1e-12)) - math.log(-math.log(rng.random() or 1e-12)) for p in row] for row in rows]


class DifferentiableController(Controller):
    """Options of the one-shot search (:data:`nas.oneshot.options.DIFFERENTIABLE` and the method's)."""

    METHOD = ""
    MULTI_OBJECTIVE = False

    def __init__(self, space: SearchSpace, options: Any, seed: int, n_objectives: int) -> None:
        super().__init__(space, options, seed, n_objectives)
        try:
            space.oneshot_edges()
        except NotImplementedError as err:
            raise SpecError(f"controller.name: {self.METHOD!r} needs a space with a supernet; {err}") from None

    def sampler(self) -> Any:
        return DistributionSampler(self.space, seed=self.seed, samples=self.options["samples"])


class DartsController(DifferentiableController):
    """``darts``: first-order DARTS (softmax mixture), optionally with Beta-DARTS' regularisation."""

    METHOD = "darts"
    OPTIONS = {**DIFFERENTIABLE, **METHODS["darts"]}


class GdasController(DifferentiableController):
    """``gdas``: one op per edge by a hard Gumbel-softmax sample, temperature annealed."""

    METHOD = "gdas"
    OPTIONS = {**DIFFERENTIABLE, **METHODS["gdas"]}


class DrnasController(DifferentiableController):
    """``drnas``: Dirichlet-distributed op weights with an anti-collapse L2 term on the concentrations."""

    METHOD = "drnas"
    OPTIONS = {**DIFFERENTIABLE, **METHODS["drnas"]}
