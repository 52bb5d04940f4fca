"""Grid search: every architecture of a space's finite grid (``SearchSpace.grid``), each once.

The sampler walks the grid in a fixed order (the space's, or a seeded shuffle of it) and proposes
the first point that no trial has taken yet. A point counts as taken once a trial holds it, whether
that trial finished, failed or is still in flight, so several workers never get the same point and
a restarted driver continues where the last one stopped; only trials a stopped driver abandoned
("interrupted", their budget unspent) give their point back. When every point is taken,
``is_exhausted`` tells the search loop, which waits for the trials in flight and ends the run.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas.config import Field, SpecError
from nas.controllers import Controller
from nas.controllers.history import GenotypeSampler, History
from nas.genotype import Genotype
from nas.ledger.shared import released
from nas.space import SearchSpace

log = logging.getLogger(__name__)


class GridSampler(GenotypeSampler):
    """Proposes the points of ``space.grid()`` in a fixed order, each once.

    Args:
        space: a space whose ``grid()`` lists its points (not None).
        shuffle: walk the grid in a seeded random order instead of the space's order.
        seed: seed of the shuffle (the same seed gives the same order after a restart).

    Raises:
        SpecError: the space has no grid (``controller.name``) or an empty one.
    """

    def __init__(self, space: SearchSpace, shuffle: bool = False, seed: int | None = None) -> None:
        super().__init__(space, seed)
        points = space.grid()
        if points is None:
            raise SpecError(f"controller.name: 'grid' needs a space that lists a grid of architectures; "
                            f"space {space.name!r} with these options has none (use e.g. 'evolution')")
        unique = list({g.arch_id: g for g in reversed(points)}.values())[::-1]  # first occurrence wins
        if not unique:
            raise SpecError(f"controller.name: the grid of space {space.name!r} is empty")
        if shuffle:
            random.Random(f"grid:{self._seed}").shuffle(unique)
        self.points: list[Genotype] = unique
        self._exhausted_logged = False

    def propose(self, history: History, rng: random.Random) -> Genotype:
        for genotype in self.points:
            if genotype.arch_id not in history.seen:
                return genotype
        if not self._exhausted_logged:
            log.info("grid: all %d points are taken; further proposals repeat", len(self.points))
            self._exhausted_logged = True
        return self.points[0]

    def is_exhausted(self, study: optuna.Study) -> bool:
        taken = self.history(study, None).seen
        return all(point.arch_id in taken for point in self.points)

    def history(self, study: optuna.Study, current: FrozenTrial | None) -> History:
        """``seen`` = arch ids of the trials holding a point (members are not needed by the grid)."""
        taken: set[str] = set()
        for trial in study.get_trials(deepcopy=False):
            if (current is not None and trial.number == current.number) or _abandoned(trial):
                continue
            known = self._decode(trial)
            if known is not None:
                taken.add(known[0])
        return History([], taken)


def _abandoned(trial: FrozenTrial) -> bool:
    """A trial that gave its point back (interrupted, or withdrawn for another driver): free again."""
    return released(trial)


class GridController(Controller):
    """``grid``: every point of the space's grid once (e.g. EfficientNet's compound coefficients)."""

    OPTIONS = {
        "shuffle": Field(bool, default=False, help="visit the grid in a random order fixed by the run's seed"),
    }

    def sampler(self) -> Any:
        return GridSampler(self.space, seed=self.seed, **self.options)
