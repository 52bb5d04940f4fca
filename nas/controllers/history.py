"""Shared machinery for samplers that propose whole genotypes from the study's history.

Such a sampler is stateless between calls: each proposal re-reads the study (completed members,
architectures already proposed or in flight), so resuming a run or sharing a study between drivers
needs no saved sampler state. Randomness comes from ``random.Random(f"{seed}:{trial.number}")``,
which makes a seeded run reproducible whatever happened before a restart.

Lineage: a child made by mutation or crossover records its parents' arch ids in the trial's system
attribute :data:`PARENTS_ATTR` (a list; absent for random samples), written when it is proposed.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Sequence

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.genotype import Genotype
from nas.ledger._optuna import set_trial_system_attr, trial_id
from nas.ledger.shared import released
from nas.space import SearchSpace

PARENTS_ATTR = "nas:parents"


@dataclass(frozen=True)
class Member:
    """A completed trial as the controllers see it."""

    number: int
    genotype: Genotype
    arch_id: str
    values: tuple[float, ...]  # oriented so that larger is better for every objective
    completed: datetime


class History:
    """Completed members in completion order, and every architecture already proposed (except those
    whose trial gave them back: interrupted or withdrawn, see :func:`nas.ledger.shared.released`)."""

    def __init__(self, members: list[Member], seen: set[str]) -> None:
        self.members, self.seen = members, seen

    def best(self) -> Member:
        """The member with the largest (first) oriented value."""
        return max(self.members, key=lambda m: m.values)

    def ranked(self) -> list[Member]:
        """Members from best to worst (first objective, then the rest)."""
        return sorted(self.members, key=lambda m: m.values, reverse=True)

    def novel(self, make: Callable[[], Genotype], tries: int) -> Genotype:
        """Call ``make`` until it returns an architecture not yet proposed (at most ``tries`` times)."""
        genotype = make()
        for _ in range(tries - 1):
            if genotype.arch_id not in self.seen:
                break
            genotype = make()
        return genotype


def winner(members: Sequence[Member]) -> Member:
    """Tournament winner: the best member, or the first non-dominated one for several objectives."""
    if len(members[0].values) == 1:
        return max(members, key=lambda m: m.values)
    for candidate in members:
        if not any(dominates(other.values, candidate.values) for other in members):
            return candidate
    return members[0]  # unreachable: a finite set always has a non-dominated member


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Pareto dominance for oriented (larger is better) values."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


class GenotypeSampler(BaseSampler):
    """Base of our samplers: proposes a genotype of ``space`` and returns its flat params."""

    def __init__(self, space: SearchSpace, seed: int | None = None) -> None:
        self._space = space
        self._seed = 0 if seed is None else seed
        self._independent = RandomSampler(seed=seed)
        self._arch_ids: dict[int, tuple[str, Genotype] | None] = {}
        self._parents: dict[str, tuple[str, ...]] = {}  # child arch_id -> parents, for the current proposal

    # Optuna's sampler interface ------------------------------------------------------------------
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._space.distributions()

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space or "fixed_params" in trial.system_attrs:
            return {}  # an enqueued trial (e.g. an interrupted architecture queued again) is not ours to propose
        rng = random.Random(f"{self._seed}:{trial.number}")
        self._parents.clear()
        genotype = self.propose(self.history(study, trial), rng)
        parents = self._parents.get(genotype.arch_id)
        if parents:
            set_trial_system_attr(study, trial, PARENTS_ATTR, list(parents))
        return self._space.to_params(genotype)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        # Only parameters outside the space's distributions (a user's extra suggest_*) land here.
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._seed = random.SystemRandom().randrange(2**31)
        self._independent.reseed_rng()

    # Ours ---------------------------------------------------------------------------------------
    @abstractmethod
    def propose(self, history: History, rng: random.Random) -> Genotype:
        """The next architecture to evaluate."""

    def child(self, genotype: Genotype, *parents: Genotype) -> Genotype:
        """Note that ``genotype`` was made from ``parents`` (recorded if it is the one proposed)."""
        ids = tuple(p.arch_id for p in parents if p.arch_id != genotype.arch_id)
        if ids:
            self._parents.setdefault(genotype.arch_id, ids)
        return genotype

    def is_exhausted(self, study: optuna.Study) -> bool:
        """True when this sampler has nothing new left to propose (the search loop then stops)."""
        return False

    def history(self, study: optuna.Study, current: FrozenTrial | None) -> History:
        """Completed members (oriented values, completion order) and all proposed arch ids."""
        signs = [1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in study.directions]
        members: list[Member] = []
        seen: set[str] = set()
        complete: dict[int, tuple[float, ...]] = {}  # trial number -> oriented values
        for trial in study.get_trials(deepcopy=False):
            if current is not None and trial.number == current.number:
                continue
            known = self._decode(trial)
            if known is None:
                continue
            arch_id, genotype = known
            if not released(trial):  # an interrupted architecture may be proposed again
                seen.add(arch_id)
            values = _values(trial, signs, complete)
            if values is not None:
                members.append(Member(trial.number, genotype, arch_id, values,
                                      trial.datetime_complete or datetime.max))
        members.sort(key=lambda m: (m.completed, m.number))
        return History(members, seen)

    def _decode(self, trial: FrozenTrial) -> tuple[str, Genotype] | None:
        """(arch id, genotype) of a trial's params, cached; None if the params are not ours."""
        key = trial_id(trial)
        if key in self._arch_ids:
            return self._arch_ids[key]
        if trial.state == TrialState.RUNNING and len(trial.params) < len(self._space.distributions()):
            return None  # still being sampled by another process: look again next time
        try:
            genotype = self._space.from_params(trial.params)
            known: tuple[str, Genotype] | None = (genotype.arch_id, genotype)
        except (ValueError, KeyError):
            known = None
        self._arch_ids[key] = known
        return known


def _values(trial: FrozenTrial, signs: list[float], complete: dict[int, tuple[float, ...]]) -> tuple[float, ...] | None:
    """Oriented values of a completed trial, or of the completed original a repeat was answered from.

    A repeated proposal is told FAIL with ``info.duplicate_of`` (Optuna's samplers see each
    architecture once), but it stays a member here with its original's values, as a re-evaluation
    would be in aging evolution.
    """
    if trial.state == TrialState.COMPLETE and trial.values is not None:
        complete[trial.number] = tuple(s * v for s, v in zip(signs, trial.values))
        return complete[trial.number]
    if trial.state == TrialState.FAIL:
        original = trial.user_attrs.get("info", {}).get("duplicate_of")
        return complete.get(original) if isinstance(original, int) else None
    return None
