"""``[evaluator] name = "zero-cost"``: searches scored by zero-cost proxies, in the ledger like any trial."""

from __future__ import annotations

import optuna
import pytest

from evaluators.proxies import PROXIES, Proxy
from evaluators.zerocost_options import DATA_PROXIES, PROXY_NAMES
from nas.search.summary import evaluated_trials
from tests.conftest import run_nas, write_spec
from tests.nas.test_search import run_in_memory


def zero_cost_spec(proxies: list[str], budget: int = 6) -> dict:
    return {"run": {"name": "zc", "budget": budget, "seed": 0}, "space": {"name": "nb201", "preset": "proxy"},
            "controller": {"name": "random"},
            "evaluator": {"name": "zero-cost", "proxies": proxies, "reference": 4, "batch_size": 16, "threads": 1},
            "objectives": [{"metric": "zero_cost", "direction": "maximize"}]}


def test_the_declaration_names_every_proxy():
    assert PROXY_NAMES == tuple(PROXIES)
    assert DATA_PROXIES == {name for name, proxy in PROXIES.items() if proxy.needs_data}


def test_a_single_proxy_is_the_objective():
    study, outcome = run_in_memory(zero_cost_spec(["synflow"]))
    trials = evaluated_trials(study)
    assert len(trials) == 6 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for trial in trials:
        metrics = trial.user_attrs["metrics"]
        assert metrics["zero_cost"] == metrics["proxy_synflow"] == trial.values[0] > 0
        assert metrics["proxy_seconds"] > 0


def test_several_proxies_vote_by_their_percentile_among_a_seeded_reference():
    study, _ = run_in_memory(zero_cost_spec(["synflow", "naswot", "params"], budget=5))
    trials = evaluated_trials(study)
    assert len(trials) == 5
    votes = [t.user_attrs["metrics"]["zero_cost"] for t in trials]
    assert all(0.0 <= v <= 1.0 for v in votes) and len(set(votes)) > 1
    # the same architecture and seed score the same, whichever run (the reference is seeded)
    again, _ = run_in_memory(zero_cost_spec(["synflow", "naswot", "params"], budget=5))
    assert [t.user_attrs["metrics"]["zero_cost"] for t in evaluated_trials(again)] == votes


def test_a_failing_proxy_fails_its_trial_and_the_search_goes_on(monkeypatch):
    real = PROXIES["synflow"].function
    calls = []

    def flaky(net, batch=None, *, input_shape=None, seed=0):
        calls.append(1)
        if len(calls) % 2 == 0:
            return float("nan")
        return real(net, batch, input_shape=input_shape, seed=seed)

    monkeypatch.setitem(PROXIES, "synflow", Proxy(flaky, needs_data=False))
    study, outcome = run_in_memory(zero_cost_spec(["synflow"], budget=6))
    states = [t.state for t in study.trials]
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert failed and "synflow" in failed[0].user_attrs["info"]["error"]
    # every other network fails (the budget counts failures, as for any evaluator): the search went on
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL] * 3


@pytest.mark.parametrize("evaluator, field", [
    ({"proxies": ["magic"]}, "evaluator.proxies: unknown proxy 'magic'"),
    ({"proxies": []}, "evaluator.proxies: expected at least one proxy"),
    ({"proxies": ["synflow", "synflow"]}, "evaluator.proxies: a proxy is named twice"),
    ({"reference": 1}, "evaluator.reference"),
])
def test_a_bad_evaluator_table_exits_2_naming_the_field(tmp_path, evaluator, field):
    spec = zero_cost_spec(["synflow"])
    spec["evaluator"].update(evaluator)
    out = run_nas("search", str(write_spec(tmp_path / "s.toml", spec)), "--out", str(tmp_path / "run"))
    assert out.returncode == 2
    assert field in out.stderr and len(out.stderr.strip().splitlines()) == 1
