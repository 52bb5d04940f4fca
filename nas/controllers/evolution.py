"""Regularized (aging) evolution, Real et al. 2019, as an Optuna sampler.

Population = the ``population`` most recently completed trials; each child mutates the winner of a
tournament of ``sample`` members drawn from it, so the oldest member drops out as children arrive
(aging). Until the population is full, proposals are random. Children are made by the space's
structure-aware ``mutate`` and, by default, re-drawn while they repeat an architecture already
proposed (the run's budget counts unique architectures, so a repeat would be a wasted cycle).

Predictor-guided mutation (``candidates`` > 1): the tournament winner gets several distinct
mutants and a Gaussian-process surrogate fitted to the population's history picks the one with the
highest expected improvement; parent selection and aging stay those of regularized evolution.
``candidates = 1`` is the plain algorithm.

Several objectives: the tournament picks the member of lowest non-dominated rank within the
population, then the largest crowding distance (NSGA-II's crowded comparison, Deb et al. 2002),
so aging evolution spreads along the Pareto front; the surrogate, which models one objective, is
off.
"""

from __future__ import annotations

import random
from typing import Any

from nas.config import Field, SpecError
from nas.controllers import Controller
from nas.controllers.history import GenotypeSampler, History, winner
from nas.controllers.pareto import pareto_winner
from nas.controllers.surrogate import SurrogateRanker
from nas.genotype import Genotype
from nas.space import SearchSpace


class RegularizedEvolutionSampler(GenotypeSampler):
    """Aging evolution over a space's genotypes.

    Args:
        space: the search space (its ``sample``, ``mutate`` and ``crossover`` are used).
        population: P, members kept (the most recently completed).
        sample: S, tournament size.
        crossover_prob: chance that a child is the crossover of two tournament winners before mutation.
        novel_tries: attempts to draw a child not proposed before (1 = plain aging evolution).
        candidates: mutants per child among which the surrogate chooses (1 = no surrogate).
        seed: seed of all random choices.
    """

    def __init__(self, space: SearchSpace, population: int = 20, sample: int = 10,
                 crossover_prob: float = 0.0, novel_tries: int = 20, candidates: int = 8,
                 seed: int | None = None) -> None:
        super().__init__(space, seed)
        if not 1 <= sample <= population:
            raise SpecError(f"controller.sample: expected 1 <= sample <= population ({population}), got {sample}")
        self.population, self.sample = population, sample
        self.crossover_prob, self.novel_tries, self.candidates = crossover_prob, novel_tries, candidates
        self._ranker = SurrogateRanker(space) if candidates > 1 else None

    def propose(self, history: History, rng: random.Random) -> Genotype:
        if len(history.members) < self.population:
            return history.novel(lambda: self._space.sample(rng), self.novel_tries)
        population = history.members[-self.population:]
        if self._ranker is None:
            return history.novel(lambda: self._child(population, rng), self.novel_tries)
        children: dict[str, Genotype] = {}
        for _ in range(self.candidates * self.novel_tries):
            child = self._child(population, rng)
            if child.arch_id not in history.seen:
                children.setdefault(child.arch_id, child)
            if len(children) >= self.candidates:
                break
        if not children:
            return self._child(population, rng)
        return self._ranker.rank(history.members, list(children.values()))[0]

    def _child(self, population: list, rng: random.Random) -> Genotype:
        """Mutation of a tournament winner (optionally crossed with a second winner first)."""
        parent = self._winner(rng.sample(population, self.sample), population).genotype
        if self.crossover_prob and rng.random() < self.crossover_prob:
            other = self._winner(rng.sample(population, self.sample), population).genotype
            mixed = self._space.crossover(parent, other, rng)
            return self.child(self._space.mutate(mixed, rng), parent, other)
        return self.child(self._space.mutate(parent, rng), parent)

    @staticmethod
    def _winner(sampled: list, population: list) -> Any:
        """Best of the tournament; by non-dominated rank and crowding for several objectives."""
        if len(sampled[0].values) > 1:
            return pareto_winner(sampled, population)
        return winner(sampled)


class EvolutionController(Controller):
    """``evolution``: regularized evolution.

    Defaults chosen with ``nas bench controllers`` on three NAS-Bench-201 tables (CIFAR-10,
    CIFAR-100, ImageNet16-120; see BENCHMARKS.md): P=20, S=10 and 8 surrogate-ranked candidates per
    child; ``candidates = 1`` with P=100, S=25 is the paper's setting.
    """

    OPTIONS = {
        "population": Field(int, default=20, min=2, help="P: members kept"),
        "sample": Field(int, default=10, min=1, help="S: tournament size"),
        "crossover_prob": Field(float, default=0.0, min=0.0, max=1.0,
                                help="probability that a child is a crossover of two parents, then mutated"),
        "novel_tries": Field(int, default=20, min=1, help="re-draws of a child that repeats an architecture"),
        "candidates": Field(int, default=8, min=1, help="mutants per child ranked by a GP surrogate (1: none)"),
    }

    def sampler(self) -> Any:
        options = dict(self.options)
        if self.n_objectives > 1:
            options["candidates"] = 1  # the surrogate models one objective
        return RegularizedEvolutionSampler(self.space, seed=self.seed, **options)
