"""Short searches of the vit space on digits with evolution and TPE (the real loop, training and ledger)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.controllers.history import PARENTS_ATTR
from nas.executors.inline import InlineExecutor
from nas.search.loop import Search, create_study
from nas.search.summary import evaluated_trials
from nas.search.spec import parse_spec
from search_spaces.vit.space import VitSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)


def digits_spec(controller: dict, budget: int = 6, evaluator: dict | None = None) -> dict:
    return {"run": {"name": "vit", "budget": budget, "seed": 0},
            "space": {"name": "vit", "preset": "proxy", "dims": [16, 24], "depths": [0, 1, 2]},
            "controller": controller,
            "evaluator": {"name": "train", "data": "digits", "train_limit": 256, "valid_limit": 128, "batch_size": 32,
                          "threads": 1, "budget": {"steps": 8}, **(evaluator or {})},
            "objectives": [{"metric": "accuracy"}]}


def test_spec_takes_the_space_training_defaults_unless_it_sets_them():
    spec = parse_spec(digits_spec({"name": "random"}), Path("."))
    assert (spec.evaluator["optimizer"], spec.evaluator["lr"], spec.evaluator["warmup"]) == ("adamw", 1e-2, 0.1)
    spec = parse_spec(digits_spec({"name": "random"}, evaluator={"optimizer": "sgd", "lr": 0.1}), Path("."))
    assert (spec.evaluator["optimizer"], spec.evaluator["lr"]) == ("sgd", 0.1)
    nb201 = parse_spec({**digits_spec({"name": "random"}), "space": {"name": "nb201", "preset": "proxy"}}, Path("."))
    assert nb201.evaluator["optimizer"] == "sgd"  # other spaces keep the evaluator's own defaults


@pytest.mark.parametrize("controller", [{"name": "evolution", "population": 3, "sample": 2},
                                        {"name": "tpe", "n_startup_trials": 3}], ids=["evolution", "tpe"])
def test_short_search_on_digits(controller):
    spec = parse_spec(digits_spec(controller), Path("."))
    study = create_study(spec, optuna.storages.InMemoryStorage())
    outcome = Search(spec, study, InlineExecutor(), "", None).run()
    trials = evaluated_trials(study)
    assert outcome.reason == "budget" and len(trials) == 6
    assert len({t.user_attrs["arch_id"] for t in trials}) == 6
    space = VitSpace(preset="proxy", dims=[16, 24], depths=[0, 1, 2])
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get("info")
        genotype = space.from_dict(trial.user_attrs["genotype"])
        assert trial.user_attrs["metrics"]["params"] == space.cost(genotype).params
        assert 0.0 <= trial.value <= 100.0
    assert max(t.value for t in trials) > 10.0  # above chance after 8 steps on 256 images
    if controller["name"] == "evolution":  # children past the population record their parents
        assert any(PARENTS_ATTR in t.system_attrs for t in trials[3:])


def test_search_cli_writes_the_stage_type_report(tmp_path):
    import csv
    import json

    from tests.conftest import run_nas, write_spec

    data = digits_spec({"name": "random"}, budget=4, evaluator={"budget": {"steps": 2}})
    proc = run_nas("search", str(write_spec(tmp_path / "vit.toml", data)), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    folder = tmp_path / "vit"
    rows = list(csv.DictReader((folder / "stage_types.csv").open()))
    families = [r for r in rows if r["group"] == "family"]
    assert sum(int(r["candidates"]) for r in families) == summary["evaluated"] == 4
    assert sum(int(r["candidates"]) for r in rows if r["group"] == "pattern") == 4
    best = max(families, key=lambda r: float(r["best"]))
    assert float(best["best"]) == summary["best"]["values"]["accuracy"]
    assert int(best["best_trial"]) == summary["best"]["number"]
    assert (folder / "best/architecture.png").read_bytes()[:4] == b"\x89PNG"
