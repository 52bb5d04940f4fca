"""The search loop on the NB201 table and on the synthetic evaluator (inline executor)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from nas.executors.inline import InlineExecutor
from nas.search.loop import Search, create_study
from nas.search.summary import evaluated_trials
from nas.search.spec import parse_spec
from tests.conftest import nb201_spec, run_nas, write_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_in_memory(data: dict, base: Path = Path(".")) -> tuple[optuna.Study, object]:
    spec = parse_spec(data, base)
    study = create_study(spec, optuna.storages.InMemoryStorage())
    outcome = Search(spec, study, InlineExecutor(), "", None).run()
    return study, outcome


def synthetic_spec(**sections) -> dict:
    spec = {"run": {"name": "s", "budget": 20, "seed": 0}, "space": {"name": "nb201"},
            "controller": {"name": "random"}, "evaluator": {"name": "synthetic"},
            "objectives": [{"metric": "score"}]}
    for key, value in sections.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    return spec


def test_search_end_to_end_writes_the_run_folder(tmp_path, nb201_table):
    spec = write_spec(tmp_path / "nb.toml", nb201_spec(nb201_table, run={"name": "nb", "budget": 50}))
    proc = run_nas("search", str(spec), "--json", check=True)
    summary = json.loads(proc.stdout)
    folder = tmp_path / "nb"
    for name in ("spec.toml", "study.journal", "search.log", "summary.json", "best/genotype.json",
                 "best/architecture.png"):
        assert (folder / name).is_file(), name
    assert summary["evaluated"] == 50 and summary["stopped"] == "budget"
    assert summary["best"]["values"]["test_acc"] == max(r["values"]["test_acc"] for r in summary["top"])
    assert "[50/50]" in proc.stderr  # the progress line
    genotype = json.loads((folder / "best/genotype.json").read_text())
    assert genotype == summary["best"]["genotype"]


def test_budget_counts_unique_architectures_and_duplicates_reuse_results(nb201_table):
    # a tiny population without re-draws proposes many repeats
    data = nb201_spec(nb201_table, run={"budget": 40, "seed": 3},
                      controller={"name": "evolution", "population": 2, "sample": 2, "novel_tries": 1,
                      "candidates": 1})
    study, outcome = run_in_memory(data)
    counted = evaluated_trials(study)
    ids = [t.user_attrs["arch_id"] for t in counted]
    assert outcome.reason == "budget" and len(counted) == 40 and len(set(ids)) == 40
    duplicates = [t for t in study.trials if "duplicate_of" in t.user_attrs.get("info", {})]
    assert duplicates, "this seed should propose repeats"
    by_number = {t.number: t for t in study.trials}
    for dup in duplicates:
        original = by_number[dup.user_attrs["info"]["duplicate_of"]]
        assert original.user_attrs["arch_id"] == dup.user_attrs["arch_id"]
        assert dup.state == optuna.trial.TrialState.FAIL and dup.values is None  # samplers see it once
        assert dup.user_attrs["metrics"] == original.user_attrs["metrics"]
        assert dup.user_attrs["info"]["duplicate_state"] == original.state.name.lower()
    complete_ids = [t.user_attrs["arch_id"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete_ids) == len(set(complete_ids))
    assert {t.number for t in study.best_trials} <= {t.number for t in counted}


def test_history_samplers_still_count_repeats_as_members(nb201_table):
    """A repeat told FAIL is a member with its original's values (as before: evolution unaffected)."""
    data = nb201_spec(nb201_table, run={"budget": 40, "seed": 3},
                      controller={"name": "evolution", "population": 2, "sample": 2, "novel_tries": 1,
                      "candidates": 1})
    study, _ = run_in_memory(data)
    members = study.sampler.history(study, None).members
    complete = {t.number: t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    repeats = [t for t in study.trials if t.user_attrs.get("info", {}).get("duplicate_of") in complete]
    assert repeats and len(members) == len(complete) + len(repeats)
    by_number = {m.number: m for m in members}
    for dup in repeats:
        assert by_number[dup.number].values == tuple(complete[dup.user_attrs["info"]["duplicate_of"]].values)


def test_seeded_inline_runs_are_reproducible(nb201_table):
    for controller in ("evolution", "tpe", "guided"):
        data = nb201_spec(nb201_table, run={"budget": 25, "seed": 11}, controller={"name": controller})
        runs = [run_in_memory(data)[0] for _ in range(2)]
        sequences = [[t.user_attrs["arch_id"] for t in s.trials] for s in runs]
        assert sequences[0] == sequences[1], controller


def test_failing_candidates_never_stop_the_search():
    study, outcome = run_in_memory(synthetic_spec(evaluator={"fail_rate": 0.3}, run={"budget": 30}))
    counted = evaluated_trials(study)
    failed = [t for t in counted if t.state == optuna.trial.TrialState.FAIL]
    assert outcome.reason == "budget" and len(counted) == 30
    assert failed and all(t.user_attrs["info"]["error"] == "synthetic failure" for t in failed)


def test_repeated_failures_stop_the_search_with_the_last_error(tmp_path):
    spec = write_spec(tmp_path / "f.toml", synthetic_spec(evaluator={"fail_rate": 1.0},
                                                           run={"budget": 30, "max_failures": 5}))
    proc = run_nas("search", str(spec))
    assert proc.returncode == 1
    assert "5 candidates failed in a row; last: synthetic failure" in proc.stderr


def test_constraints_reject_architectures_before_evaluation(nb201_table):
    limit = 60e6
    data = nb201_spec(nb201_table, run={"budget": 20}, constraints={"flops": {"max": limit}})
    study, _ = run_in_memory(data)
    counted = evaluated_trials(study)
    assert len(counted) == 20
    assert all(t.user_attrs["metrics"]["flops"] <= limit for t in counted)
    infeasible = [t for t in study.trials if str(t.user_attrs.get("info", {}).get("error", "")).startswith("infeasible")
                  and "duplicate_of" not in t.user_attrs["info"]]
    assert infeasible and all(not t.user_attrs["info"]["counted"] for t in infeasible)
    # the bound reaches the samplers as an Optuna constraint: infeasible ones are PRUNED (TPE reads them)
    assert all(t.state == optuna.trial.TrialState.PRUNED and t.constraints["flops<=max"] > 0 for t in infeasible)
    assert all(t.constraints["flops<=max"] <= 0 for t in counted)


def test_median_pruner_stops_unpromising_trials():
    study, _ = run_in_memory(synthetic_spec(evaluator={"steps": 5}, run={"budget": 30},
                                            pruner={"name": "median", "n_startup_trials": 3, "n_warmup_steps": 0}))
    states = [t.state for t in evaluated_trials(study)]
    assert states.count(optuna.trial.TrialState.PRUNED) >= 5
    assert states.count(optuna.trial.TrialState.COMPLETE) >= 5


def test_wall_clock_budget_stops_the_search():
    """A clock that advances one second per trial asked: ``max_time = 5`` stops the search after 5."""
    spec = parse_spec(synthetic_spec(run={"budget": 1000, "max_time": 5}), Path("."))
    study = create_study(spec, optuna.storages.InMemoryStorage())
    outcome = Search(spec, study, InlineExecutor(), "", None,
                     clock=lambda: float(len(study.get_trials(deepcopy=False)))).run()
    assert outcome.reason == "time"
    assert len(evaluated_trials(study)) == 5


def test_two_objectives_give_a_pareto_set(tmp_path, nb201_table):
    data = nb201_spec(nb201_table, run={"name": "mo", "budget": 30}, controller={"name": "nsga2", "population_size": 10},
                      objectives=[{"metric": "test_acc", "direction": "maximize"},
                                  {"metric": "flops", "direction": "minimize"}])
    spec = write_spec(tmp_path / "mo.toml", data)
    summary = json.loads(run_nas("search", str(spec), "--json", check=True).stdout)
    front = summary["pareto"]
    assert front
    for a in front:  # no member of the set dominates another
        for b in front:
            assert not (a["values"]["test_acc"] > b["values"]["test_acc"] and a["values"]["flops"] < b["values"]["flops"])


def test_mnas_reward_objective_combines_accuracy_and_cost(nb201_table):
    target = 100e6
    data = nb201_spec(nb201_table, run={"budget": 15},
                      objectives=[{"metric": "reward", "reward": {"accuracy": "test_acc", "cost": "flops",
                                                                  "target": target, "w": -0.07}}])
    study, _ = run_in_memory(data)
    for trial in evaluated_trials(study):
        m = trial.user_attrs["metrics"]
        assert trial.values[0] == pytest.approx(m["test_acc"] * (m["flops"] / target) ** -0.07)
        assert m["reward"] == trial.values[0]


def test_hard_reward_constraint_uses_alpha_and_beta():
    from nas.search.objectives import mnas_reward

    assert mnas_reward(90.0, 50.0, 100.0, 0.0, -1.0) == 90.0
    assert mnas_reward(90.0, 200.0, 100.0, 0.0, -1.0) == 45.0


@pytest.mark.parametrize("controller", ["evolution", "local", "guided"])
def test_children_record_their_parents_arch_ids(controller):
    """Lineage: every mutated child names parents that were evaluated before it was proposed."""
    from nas.controllers.history import PARENTS_ATTR

    options = {"evolution": {"population": 5, "sample": 2}, "local": {"n_startup": 5},
               "guided": {"n_startup": 5}}[controller]
    study, _ = run_in_memory(synthetic_spec(run={"budget": 25}, controller={"name": controller, **options}))
    trials = study.get_trials(deepcopy=False)
    first_seen = {}
    for trial in trials:
        first_seen.setdefault(trial.user_attrs["arch_id"], trial.number)
    children = [t for t in trials if t.system_attrs.get(PARENTS_ATTR)]
    assert len(children) >= 10
    for child in children:
        for parent in child.system_attrs[PARENTS_ATTR]:
            assert first_seen[parent] < child.number
            assert parent != child.user_attrs["arch_id"]
    assert all(not t.system_attrs.get(PARENTS_ATTR) for t in trials[:5])


def test_tpe_learns_feasibility_from_constraints(nb201_table):
    """Infeasible candidates reach TPE as constrained observations: it proposes far fewer of them."""
    def infeasible(controller: str) -> int:
        data = nb201_spec(nb201_table, run={"budget": 40, "seed": 0}, controller={"name": controller},
                          constraints={"flops": {"max": 30e6}})  # about a third of NB201 is feasible
        study, outcome = run_in_memory(data)
        assert outcome.reason == "budget"
        return sum(str(t.user_attrs.get("info", {}).get("error", "")).startswith("infeasible") for t in study.trials)

    tpe, rnd = infeasible("tpe"), infeasible("random")
    assert tpe < 0.5 * rnd, (tpe, rnd)


def test_a_failed_executor_start_still_marks_the_driver_stopped(tmp_path, nb201_table):
    """Other drivers must not wait ``GRACE_S`` for a driver that never ran: its record says stopped."""
    table = tmp_path / "t.csv"
    table.write_bytes(Path(nb201_table).read_bytes())
    spec = parse_spec(nb201_spec(table), tmp_path)
    table.unlink()  # the evaluator's data is gone by the time the executor starts
    storage = optuna.storages.InMemoryStorage()
    study = create_study(spec, storage)
    with pytest.raises(FileNotFoundError, match="table not found"):
        Search(spec, study, InlineExecutor(), "", None).run()
    attrs = storage.get_study_system_attrs(storage.get_study_id_from_name(study.study_name))
    records = [v for k, v in attrs.items() if k.startswith("nas:driver:")]
    assert len(records) == 1 and records[0]["stopped"] is True


def test_numbers_print_short_and_large_scores_without_a_suffix():
    from nas.search.summary import _fmt

    assert [_fmt(v) for v in (94.37, 1.07e6, 5e9, 2.2e18, -3.1e13, None)] == \
        ["94.37", "1.07M", "5G", "2.2e+18", "-3.1e+13", "-"]
