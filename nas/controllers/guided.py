"""Guided local search: a GP surrogate chooses among the unseen neighbours of the best members.

Each proposal builds a candidate pool of unproposed architectures one mutation away from the best
``expand`` members (all of them where the space lists neighbours, else ``tries`` mutants each),
plus ``explore`` random ones, and evaluates the candidate with the highest expected improvement
under a Gaussian-process surrogate fitted to every completed architecture. Local moves keep the
search where good architectures are; the surrogate orders them so that improving moves come first;
the random share and EI's uncertainty term keep it from stalling in one basin.
"""

from __future__ import annotations

import bisect
import random
from typing import Any, Mapping

from nas.config import Field
from nas.controllers import Controller
from nas.controllers.history import GenotypeSampler, History
from nas.controllers.surrogate import SurrogateRanker
from nas.genotype import Genotype
from nas.space import SearchSpace


class GuidedSampler(GenotypeSampler):
    """Surrogate-ranked local search (single objective).

    Args:
        space: the search space.
        n_startup: random architectures before the surrogate is used.
        expand: best members whose neighbourhoods form the candidate pool.
        explore: random unseen architectures added to the pool.
        tries: mutants drawn per member when the space cannot list neighbours.
        seed: seed of all random choices.
    """

    def __init__(self, space: SearchSpace, n_startup: int = 10, expand: int = 5, explore: int = 100,
                 tries: int = 40, seed: int | None = None) -> None:
        super().__init__(space, seed)
        self.n_startup, self.expand, self.explore, self.tries = n_startup, expand, explore, tries
        self._ranker = SurrogateRanker(space)

    def propose(self, history: History, rng: random.Random) -> Genotype:
        if len(history.members) < self.n_startup:
            return history.novel(lambda: self._space.sample(rng), self.tries)
        pool: dict[str, Genotype] = {}
        for member in history.ranked()[: self.expand]:
            for child in self._neighbours(member.genotype, rng):
                if child.arch_id not in history.seen:
                    pool.setdefault(child.arch_id, child)
        for _ in range(self.explore):
            child = self._space.sample(rng)
            if child.arch_id not in history.seen:
                pool.setdefault(child.arch_id, child)
        if not pool:
            return history.novel(lambda: self._space.sample(rng), self.tries)
        return self._ranker.rank(history.members, list(pool.values()))[0]

    def select(self, study: Any, candidates: list[Genotype], scores: Mapping[str, float]) -> list[Genotype]:
        """A pre-screen batch's candidates, best first, for ``[prescreen]``: ranked by expected
        improvement under the surrogate with the proxy score as one more feature (its percentile
        among every score recorded, ``scores``: arch id -> score), fitted to the members that have a
        score; by the score alone until ``n_startup`` of them have completed."""
        members = [m for m in self.history(study, None).members if m.arch_id in scores]
        by_score = sorted(candidates, key=lambda g: -scores[g.arch_id])
        if len({m.arch_id for m in members}) < self.n_startup:
            return by_score
        ordered = sorted(scores.values())
        features = {a: (bisect.bisect_left(ordered, v) + bisect.bisect_right(ordered, v)) / 2 / len(ordered)
                    for a, v in scores.items()}
        return self._ranker.rank(members, by_score, features)

    def _neighbours(self, genotype: Genotype, rng: random.Random) -> list[Genotype]:
        listed = self._space.neighbours(genotype)
        if listed is None:
            listed = [self._space.mutate(genotype, rng) for _ in range(self.tries)]
        return [self.child(g, genotype) for g in listed]


class GuidedController(Controller):
    """``guided``: surrogate-guided local search (the best controller on NAS-Bench-201 here)."""

    MULTI_OBJECTIVE = False
    OPTIONS = {
        "n_startup": Field(int, default=10, min=2, help="random architectures before the surrogate"),
        "expand": Field(int, default=5, min=1, help="best members whose neighbourhoods are candidates"),
        "explore": Field(int, default=100, min=0, help="random candidates added to the pool"),
        "tries": Field(int, default=40, min=1, help="mutants per member (spaces without neighbour lists)"),
    }

    def sampler(self) -> Any:
        return GuidedSampler(self.space, seed=self.seed, **self.options)
