"""A controller plugin for the fault tests: proposes every architecture twice in a row, so that with
two or more workers a repeat is proposed while its first proposal is still being evaluated (the
search loop parks it behind the in-flight one)."""

from __future__ import annotations

import random
from typing import Any

from nas.controllers import Controller
from nas.controllers.history import GenotypeSampler, History
from nas.genotype import Genotype


class _Twice(GenotypeSampler):
    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        if not search_space:
            return {}
        return self._space.to_params(self._space.sample(random.Random(f"{self._seed}:{trial.number // 2}")))

    def propose(self, history: History, rng: random.Random) -> Genotype:  # unused: sample_relative decides
        return self._space.sample(rng)


class RepeatController(Controller):
    def sampler(self) -> Any:
        return _Twice(self.space, seed=self.seed)
