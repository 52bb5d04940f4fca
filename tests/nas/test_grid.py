"""The grid controller: fixed order, no repeats, in-flight and resumed studies, the loop's end, spec errors."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from nas import registry
from nas.config import SpecError
from nas.controllers.grid import GridController, GridSampler
from nas.executors.inline import InlineExecutor
from nas.search.loop import Search, create_study
from nas.search.summary import evaluated_trials
from nas.search.spec import parse_spec
from search_spaces.scaling.space import ScalingSpace
from tests.conftest import run_nas, write_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

SMALL = {"grid_step": 0.1, "grid_tolerance": 0.1}  # 22 points
TINY = {"grid_step": 0.1, "grid_tolerance": 0.02}  # 3 points


def space_of(**options) -> ScalingSpace:
    return ScalingSpace(preset="proxy", search="coefficients", **options)


def ask(study: optuna.Study, space: ScalingSpace) -> tuple[optuna.Trial, str]:
    trial = study.ask(space.distributions())
    return trial, space.from_params(trial.params).arch_id


def ids(genotypes) -> list[str]:
    return [g.arch_id for g in genotypes]


def test_points_come_in_the_grid_order_then_a_repeat():
    space = space_of(**SMALL)
    study = optuna.create_study(sampler=GridSampler(space), direction="maximize")
    proposed = []
    n = len(space.grid())  # distinct networks: grid points that round to the same one count once
    for _ in range(n):
        trial, arch_id = ask(study, space)
        proposed.append(arch_id)
        study.tell(trial, 1.0)
    assert proposed == ids(space.grid())
    assert len(set(proposed)) == n
    assert ask(study, space)[1] == proposed[0]  # used up: a repeat, which the loop counts as a duplicate


def test_in_flight_points_are_not_proposed_twice():
    space = space_of(**SMALL)
    study = optuna.create_study(sampler=GridSampler(space), direction="maximize")
    running = [ask(study, space) for _ in range(4)]  # four trials in flight, none told
    assert [arch_id for _, arch_id in running] == ids(space.grid()[:4])
    study.tell(running[1][0], 0.5)
    assert ask(study, space)[1] == space.grid()[4].arch_id


def test_a_fresh_sampler_continues_where_the_last_stopped_and_retakes_abandoned_points():
    space = space_of(**SMALL)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, sampler=GridSampler(space), direction="maximize", study_name="g")
    trials = [ask(study, space)[0] for _ in range(5)]
    for trial in trials[:2]:
        study.tell(trial, 1.0)
    trials[2].set_user_attr("info", {"counted": True, "error": "non-finite loss"})  # failed: stays taken
    study.tell(trials[2], state=TrialState.FAIL)
    for trial in trials[3:]:  # abandoned by a stopped driver, as Ledger.load marks them
        trial.set_user_attr("info", {"counted": False, "error": "interrupted: the driver stopped"})
        study.tell(trial, state=TrialState.FAIL)
    resumed = optuna.load_study(study_name="g", storage=storage, sampler=GridSampler(space))
    grid = ids(space.grid())
    assert [ask(resumed, space)[1] for _ in range(4)] == [grid[3], grid[4], grid[5], grid[6]]


def test_shuffle_is_a_permutation_fixed_by_the_seed():
    space = space_of(**SMALL)
    plain = ids(GridSampler(space).points)
    first, again = GridSampler(space, shuffle=True, seed=1).points, GridSampler(space, shuffle=True, seed=1).points
    other = GridSampler(space, shuffle=True, seed=2).points
    assert ids(first) == ids(again) and sorted(ids(first)) == sorted(plain)
    assert ids(first) != plain and ids(first) != ids(other)
    study = optuna.create_study(sampler=GridController(space, {"shuffle": True}, 1, 1).sampler())
    assert ask(study, space)[1] == first[0].arch_id


def test_grid_is_registered():
    assert registry.lookup("controllers", "grid") is GridController


def synthetic_spec(budget: int, **space) -> dict:
    return {"run": {"name": "g", "budget": budget, "seed": 0},
            "space": {"name": "scaling", "preset": "proxy", "search": "coefficients", **space},
            "controller": {"name": "grid"}, "evaluator": {"name": "synthetic"},
            "objectives": [{"metric": "score"}]}


def run_in_memory(data: dict):
    spec = parse_spec(data, ".")
    study = create_study(spec, optuna.storages.InMemoryStorage())
    return study, Search(spec, study, InlineExecutor(), "", None).run()


def test_search_evaluates_every_point_once_and_stops_when_the_grid_is_used_up():
    study, outcome = run_in_memory(synthetic_spec(10, **TINY))
    evaluated = [t.user_attrs["arch_id"] for t in evaluated_trials(study)]
    assert evaluated == ids(space_of(**TINY).grid())
    assert outcome.reason == "exhausted" and outcome.evaluated == 3 and "every architecture" in outcome.message
    assert len(study.trials) == 3  # no repeats were asked for


def test_budget_of_the_grid_size_ends_on_the_budget():
    study, outcome = run_in_memory(synthetic_spec(3, **TINY))
    assert outcome.reason == "budget" and len(evaluated_trials(study)) == 3
    assert not [t for t in study.trials if "duplicate_of" in t.user_attrs.get("info", {})]


def test_grid_on_a_space_without_a_grid_is_a_spec_error(tmp_path):
    data = synthetic_spec(3)
    data["space"]["search"] = "baseline"
    with pytest.raises(SpecError, match=r"^controller\.name: 'grid' needs a space that lists a grid"):
        parse_spec(data, tmp_path)
    proc = run_nas("search", str(write_spec(tmp_path / "bad.toml", data)))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nas: error: controller.name: 'grid'"), proc.stderr
    assert not (tmp_path / "g").exists()


def test_grid_controller_and_report_import_without_torch():
    code = ("import sys\nimport nas.controllers.grid, search_spaces.scaling.report\n"
            "print('TORCH' if 'torch' in sys.modules else 'CLEAN')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "CLEAN"
