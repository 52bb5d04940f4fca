"""Best-first local search: evaluate unseen neighbours of the best member that still has any.

Stateless like the other history samplers: the next proposal is an unproposed neighbour of the best
completed architecture; when its neighbourhood is used up, the next-best member's is searched, which
gives restarts from the best remaining basins without any bookkeeping. Spaces that can list their
neighbours (``SearchSpace.neighbours``) are searched exactly; others through repeated ``mutate``.
"""

from __future__ import annotations

import random
from typing import Any

from nas.config import Field
from nas.controllers import Controller
from nas.controllers.history import GenotypeSampler, History
from nas.genotype import Genotype
from nas.space import SearchSpace


class LocalSearchSampler(GenotypeSampler):
    """Local search around the incumbent.

    Args:
        space: the search space.
        n_startup: random architectures before the first local step.
        tries: mutation draws per member when the space cannot list neighbours.
        expand: how many of the best members to try, best first, before a random restart.
        seed: seed of all random choices.
    """

    def __init__(self, space: SearchSpace, n_startup: int = 10, tries: int = 30, expand: int = 20,
                 seed: int | None = None) -> None:
        super().__init__(space, seed)
        self.n_startup, self.tries, self.expand = n_startup, tries, expand

    def propose(self, history: History, rng: random.Random) -> Genotype:
        if len(history.members) >= self.n_startup:
            for member in history.ranked()[: self.expand]:
                child = self.unseen_neighbour(member.genotype, history, rng)
                if child is not None:
                    return child
        return history.novel(lambda: self._space.sample(rng), self.tries)

    def unseen_neighbour(self, genotype: Genotype, history: History, rng: random.Random) -> Genotype | None:
        """A random neighbour of ``genotype`` not proposed before, or None if none is found."""
        listed = self._space.neighbours(genotype)
        if listed is not None:
            fresh = [g for g in listed if g.arch_id not in history.seen]
            return self.child(rng.choice(fresh), genotype) if fresh else None
        for _ in range(self.tries):
            child = self._space.mutate(genotype, rng)
            if child.arch_id not in history.seen:
                return self.child(child, genotype)
        return None


class LocalSearchController(Controller):
    """``local``: best-first local search."""

    OPTIONS = {
        "n_startup": Field(int, default=10, min=1, help="random architectures before local steps"),
        "tries": Field(int, default=30, min=1, help="mutation draws per member (spaces without neighbour lists)"),
        "expand": Field(int, default=20, min=1, help="best members whose neighbourhoods are searched"),
    }

    def sampler(self) -> Any:
        return LocalSearchSampler(self.space, seed=self.seed, **self.options)
