"""Our samplers: regularized evolution's aging and tournament, in-flight trials, local and guided search."""

from __future__ import annotations

import random
from datetime import datetime

import optuna
import pytest

from nas.controllers import make_sampler
from nas.controllers.evolution import RegularizedEvolutionSampler
from nas.controllers.guided import GuidedSampler
from nas.controllers.history import Member, winner
from nas.controllers.local import LocalSearchSampler
from search_spaces.nb201.genotype import OPS, NB201Genotype
from search_spaces.nb201.space import NB201Space

optuna.logging.set_verbosity(optuna.logging.WARNING)


class RecordingSpace(NB201Space):
    """NB201 whose mutate remembers the parents it was given."""

    def __init__(self, **options):
        super().__init__(**options)
        self.parents: list[NB201Genotype] = []

    def mutate(self, genotype, rng):
        self.parents.append(genotype)
        return super().mutate(genotype, rng)


def distinct_genotypes(n: int, seed: int = 0) -> list[NB201Genotype]:
    """n genotypes with pairwise different arch ids."""
    rng, out, ids = random.Random(seed), [], set()
    while len(out) < n:
        g = NB201Genotype(tuple(rng.choice(OPS) for _ in range(6)))
        if g.arch_id not in ids:
            ids.add(g.arch_id)
            out.append(g)
    return out


def study_with(sampler, space, genotypes, values):
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for genotype, value in zip(genotypes, values):
        study.add_trial(optuna.trial.create_trial(
            params=space.to_params(genotype), distributions=space.distributions(), value=value,
            user_attrs={"arch_id": genotype.arch_id}))
    return study


def propose(study, space):
    """Ask once (leaving the trial running) and return the proposed genotype."""
    return space.from_params(study.ask(space.distributions()).params)


def test_aging_drops_the_oldest_member_even_if_it_is_the_best():
    space = RecordingSpace()
    sampler = RegularizedEvolutionSampler(space, population=3, sample=3, novel_tries=1, candidates=1, seed=0)
    genotypes = distinct_genotypes(4)
    study = study_with(sampler, space, genotypes, [100.0, 1.0, 2.0, 3.0])
    propose(study, space)
    assert space.parents == [genotypes[3]]  # best of the last 3, not the oldest (value 100)


def test_predictor_guided_mutation_ranks_several_children_of_tournament_winners():
    space = RecordingSpace()
    sampler = RegularizedEvolutionSampler(space, population=10, sample=10, candidates=6, seed=3)
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(30)]
    score = [float(sum(op == "nor_conv_3x3" for op in g.ops)) for g in genotypes]  # a smooth landscape
    study = study_with(sampler, space, genotypes, score)
    space.parents.clear()
    child = propose(study, space)
    best = max(genotypes[-10:], key=lambda g: sum(op == "nor_conv_3x3" for op in g.ops))
    assert len(space.parents) >= 6 and all(p == best for p in space.parents)  # S = P: the best is every winner
    # of the parent's 24 neighbours the surrogate prefers one that adds a 3x3 conv
    assert sum(op == "nor_conv_3x3" for op in child.ops) == sum(op == "nor_conv_3x3" for op in best.ops) + 1


def test_tournament_winner_is_the_best_of_its_sample():
    space = RecordingSpace()
    sampler = RegularizedEvolutionSampler(space, population=10, sample=3, seed=1)
    genotypes = distinct_genotypes(10)
    study = study_with(sampler, space, genotypes, [float(v) for v in range(10)])
    for _ in range(150):
        propose(study, space)
    value_of = {g: v for v, g in enumerate(genotypes)}
    winners = [value_of[p] for p in space.parents]
    assert set(winners) <= set(range(10))
    assert min(winners) >= 2  # the two worst can never be the best of three
    assert sum(winners) / len(winners) > 6.0  # selection pressure (uniform parents would average 4.5)


def test_winner_uses_pareto_dominance_for_several_objectives():
    def member(values):
        return Member(0, NB201Genotype(("none",) * 6), "x", values, datetime.now())

    assert winner([member((1.0,)), member((3.0,)), member((2.0,))]).values == (3.0,)
    dominated, front = member((1.0, 1.0)), member((2.0, 2.0))
    assert winner([dominated, front]) is front


def test_random_phase_until_the_population_has_completed_and_inflight_is_avoided():
    space = RecordingSpace()
    sampler = RegularizedEvolutionSampler(space, population=5, sample=2, seed=2)
    genotypes = distinct_genotypes(2)
    study = study_with(sampler, space, genotypes, [1.0, 2.0])
    running = [propose(study, space) for _ in range(6)]  # 2 complete + 6 in flight < population 5 complete
    assert space.parents == []
    assert len({g.arch_id for g in running + genotypes}) == 8  # in-flight architectures are not re-proposed


def test_children_avoid_architectures_in_flight():
    space = NB201Space()
    for seed in range(5):
        sampler = RegularizedEvolutionSampler(space, population=5, sample=5, seed=seed)
        genotypes = distinct_genotypes(5, seed)
        study = study_with(sampler, space, genotypes, [float(v) for v in range(5)])
        proposals = [propose(study, space) for _ in range(10)]  # 10 in flight at once
        ids = [g.arch_id for g in proposals]
        assert len(set(ids)) == 10
        assert not set(ids) & {g.arch_id for g in genotypes}


def test_state_is_rebuilt_from_the_study():
    space = NB201Space()
    genotypes = distinct_genotypes(12)
    values = [float(v) for v in random.Random(0).sample(range(100), 12)]
    first = study_with(RegularizedEvolutionSampler(space, population=10, sample=3, seed=5), space, genotypes, values)
    second = study_with(RegularizedEvolutionSampler(space, population=10, sample=3, seed=5), space, genotypes, values)
    assert [propose(first, space) for _ in range(5)] == [propose(second, space) for _ in range(5)]


def test_sample_larger_than_population_is_a_spec_error():
    with pytest.raises(ValueError, match="controller.sample"):
        RegularizedEvolutionSampler(NB201Space(), population=5, sample=6)


def test_local_search_proposes_unseen_neighbours_of_the_best():
    space = NB201Space()
    sampler = LocalSearchSampler(space, n_startup=3, seed=0)
    genotypes = distinct_genotypes(3)
    study = study_with(sampler, space, genotypes, [1.0, 5.0, 2.0])
    proposals = [propose(study, space) for _ in range(24)]
    best = genotypes[1]
    assert all(sum(a != b for a, b in zip(p.ops, best.ops)) == 1 for p in proposals)
    assert len({p.arch_id for p in proposals}) == 24
    after = propose(study, space)  # the best's neighbourhood is used up: the next-best is expanded
    assert sum(a != b for a, b in zip(after.ops, best.ops)) > 1


def test_guided_search_prefers_what_the_history_suggests():
    space = NB201Space()
    sampler = GuidedSampler(space, n_startup=5, explore=0, seed=0)
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(40)]
    # a smooth landscape: the number of 3x3 convs
    values = [float(sum(op == "nor_conv_3x3" for op in g.ops)) for g in genotypes]
    study = study_with(sampler, space, genotypes, values)
    proposal = propose(study, space)
    best = max(values)
    assert sum(op == "nor_conv_3x3" for op in proposal.ops) >= best


@pytest.mark.parametrize("name", ["random", "tpe", "nsga2", "gp", "evolution", "local", "guided"])
def test_every_controller_proposes_valid_params(name):
    space = NB201Space()
    sampler = make_sampler(name, {}, space, seed=0)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for _ in range(12):
        trial = study.ask(space.distributions())
        genotype = space.from_params(trial.params)
        study.tell(trial, float(sum(op != "none" for op in genotype.ops)))
    assert len(study.trials) == 12
