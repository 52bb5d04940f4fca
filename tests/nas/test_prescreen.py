"""``[prescreen]``: proposals scored by a zero-cost proxy; only the best of each batch are trained."""

from __future__ import annotations

from collections import defaultdict

import optuna
import pytest
from optuna.trial import TrialState

from evaluators.proxies import PROXIES, Proxy
from nas.evaluator import SCREEN
from nas.executors.inline import InlineExecutor
from nas.ledger.store import open_storage
from nas.search.loop import Search, create_study
from nas.search.spec import parse_spec
from nas.search.summary import evaluated_trials
from tests.conftest import run_nas, write_spec
from tests.nas.test_search import run_in_memory

optuna.logging.set_verbosity(optuna.logging.WARNING)


def screened_spec(budget: int = 5, **prescreen) -> dict:
    """NB201 proxy networks, a synthetic 'training', synflow as the pre-screen."""
    return {"run": {"name": "ps", "budget": budget, "seed": 3}, "space": {"name": "nb201", "preset": "proxy"},
            "controller": {"name": "evolution", "population": 4, "sample": 2},
            "evaluator": {"name": "synthetic"}, "objectives": [{"metric": "score"}],
            "prescreen": {"proxy": "synflow", "batch": 4, "keep": 1, "threads": 1, **prescreen}}


def records(study: optuna.Study) -> list[tuple[optuna.trial.FrozenTrial, dict]]:
    return [(t, t.user_attrs["prescreen"]) for t in study.get_trials(deepcopy=False) if "prescreen" in t.user_attrs]


def test_only_the_best_of_each_batch_is_trained_and_the_others_are_pruned_with_score_and_reason():
    study, outcome = run_in_memory(screened_spec(budget=5))
    assert outcome.reason == "budget" and len(evaluated_trials(study)) == 5
    batches = defaultdict(list)
    for trial, record in records(study):
        batches[record["batch"]].append((trial, record))
    assert len(batches) == 5
    for members in batches.values():
        assert len(members) == 4
        trained = [(t, r) for t, r in members if t.state == TrialState.COMPLETE]
        pruned = [(t, r) for t, r in members if t.state == TrialState.PRUNED]
        assert len(trained) == 1 and len(pruned) == 3
        best = trained[0][1]["score"]
        assert best == max(r["score"] for _, r in members) and trained[0][1]["kept"] is True
        assert trained[0][0].user_attrs["metrics"]["prescreen"] == best  # the trained trial carries it too
        for trial, record in pruned:
            assert trial.user_attrs["metrics"]["prescreen"] == record["score"] < best
            assert record["kept"] is False and not trial.user_attrs["info"]["counted"]
            assert "synflow score" in trial.user_attrs["info"]["screened_out"]
            assert "of 4 in its batch" in trial.user_attrs["info"]["screened_out"]


def test_the_scores_and_decisions_are_the_same_under_a_seed():
    first, _ = run_in_memory(screened_spec(budget=3))
    again, _ = run_in_memory(screened_spec(budget=3))
    assert [(t.user_attrs["arch_id"], r["score"], r["kept"]) for t, r in records(first)] == \
        [(t.user_attrs["arch_id"], r["score"], r["kept"]) for t, r in records(again)]


def test_a_warm_up_trains_its_best_first():
    study, _ = run_in_memory(screened_spec(budget=4, warmup=10, warmup_keep=3, batch=1))
    warm = [(t, r) for t, r in records(study) if r["warmup"]]
    assert len(warm) == 10
    best3 = sorted((r["score"] for _, r in warm), reverse=True)[:3]
    trained = sorted(evaluated_trials(study), key=lambda t: t.datetime_complete)
    assert [t.user_attrs["prescreen"]["score"] for t in trained[:3]] == best3
    # after the warm-up a batch of one is not screened: the fourth is trained without a score
    assert "prescreen" not in trained[3].user_attrs
    assert study.user_attrs["nas:warmup_decided"] is True


class Interrupting(InlineExecutor):
    """Inline executor that records the architectures it scored and raises KeyboardInterrupt after
    ``after`` results."""

    def __init__(self, after: int = 0, **options) -> None:
        super().__init__(**options)
        self.after, self.collected, self.screened = after, 0, []

    def collect(self, timeout=None):
        self.collected += 1
        if self.after and self.collected > self.after:
            raise KeyboardInterrupt
        done = super().collect(timeout)
        self.screened += [job.arch_id for job, _ in done if job.budget.get("stage") == SCREEN]
        return done


def test_a_resumed_search_never_scores_an_architecture_again(tmp_path):
    spec = parse_spec(screened_spec(budget=6, batch=5), tmp_path)
    url = f"journal:{tmp_path / 'study.journal'}"
    first = Interrupting(after=8)  # 5 scores and the first training, then 2 scores of the second batch
    with pytest.raises(KeyboardInterrupt):
        Search(spec, create_study(spec, open_storage(url)), first, url, None).run()
    assert len(first.screened) == 7
    assert len(set(first.screened)) == 7
    second = Interrupting()
    study = create_study(spec, open_storage(url), load_if_exists=True)
    outcome = Search(spec, study, second, url, None).run()
    assert outcome.reason == "budget" and len(evaluated_trials(study)) == 6
    assert not set(first.screened) & set(second.screened), "a recorded score was computed again"
    # the two architectures scored before the interruption were put back into a batch, their scores reused
    reused = {t.user_attrs["arch_id"] for t, r in records(study) if r.get("reused")}
    assert set(first.screened[5:7]) <= reused
    assert len({t.user_attrs["arch_id"] for t in evaluated_trials(study)}) == 6


def test_a_failing_proxy_is_recorded_and_does_not_stop_the_search(monkeypatch):
    real = PROXIES["synflow"].function
    calls = []

    def flaky(net, batch=None, *, input_shape=None, seed=0):
        calls.append(1)
        return float("nan") if len(calls) % 3 == 0 else real(net, batch, input_shape=input_shape, seed=seed)

    monkeypatch.setitem(PROXIES, "synflow", Proxy(flaky, needs_data=False))
    study, outcome = run_in_memory(screened_spec(budget=4, batch=3))
    assert outcome.reason == "budget" and len(evaluated_trials(study)) == 4
    failed = [(t, r) for t, r in records(study) if r["score"] is None]
    assert failed and all("synflow" in r["error"] for _, r in failed)
    for trial, record in failed:  # ranked last: screened out with the proxy's reason
        assert trial.state == TrialState.PRUNED and record["kept"] is False
        assert "synflow failed" in trial.user_attrs["info"]["screened_out"]


@pytest.mark.parametrize("prescreen, field", [
    ({"keep": 5}, "prescreen.keep: expected at most batch (4)"),
    ({"proxy": "magic"}, "prescreen.proxy: unknown proxy 'magic'"),
    ({"batch": 0}, "prescreen.batch"),
    ({"warmup": 3, "warmup_keep": 5}, "prescreen.warmup_keep"),
    ({"tries": 3}, "prescreen.tries: unknown key"),
    ({"data": "mnist-9"}, "prescreen.data"),
    ({"scores": "missing.csv"}, "prescreen.scores: file not found"),
])
def test_a_bad_prescreen_table_exits_2_naming_the_field(tmp_path, prescreen, field):
    spec = screened_spec()
    spec["prescreen"].update(prescreen)
    out = run_nas("search", str(write_spec(tmp_path / "s.toml", spec)), "--out", str(tmp_path / "run"))
    assert out.returncode == 2
    assert field in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_scores_table_needs_the_proxys_column(tmp_path):
    scores = tmp_path / "scores.csv"
    scores.write_text("arch,params\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n")
    spec = screened_spec()
    spec["prescreen"]["scores"] = str(scores)
    out = run_nas("search", str(write_spec(tmp_path / "s.toml", spec)), "--out", str(tmp_path / "run"))
    assert out.returncode == 2 and "prescreen.scores" in out.stderr and "'synflow'" in out.stderr


def test_guided_ranks_a_batch_with_the_proxy_score_as_a_surrogate_feature():
    import random

    from nas import registry
    from nas.controllers.guided import GuidedSampler

    space = registry.make_space("nb201")
    sampler = GuidedSampler(space, n_startup=5, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    rng = random.Random(0)
    genotypes = list({g.arch_id: g for g in (space.sample(rng) for _ in range(40))}.values())
    members, (low, high) = genotypes[:30], genotypes[30:32]
    scores = {g.arch_id: float(i) for i, g in enumerate(members)}
    for i, g in enumerate(members):  # on this task the proxy misleads: the higher the score, the worse
        study.add_trial(optuna.trial.create_trial(params=space.to_params(g), distributions=space.distributions(),
                                                  values=[-float(i)]))
    scores.update({low.arch_id: -1.0, high.arch_id: 100.0})
    assert sampler.select(study, [high, low], scores) == [low, high]
    # before n_startup members have a score, the score alone decides
    few = {g.arch_id: s for g, s in zip(members[:3], (0.0, 1.0, 2.0))} | {low.arch_id: -1.0, high.arch_id: 100.0}
    assert sampler.select(study, [low, high], few) == [high, low]


def test_direction_minimize_trains_the_lowest_score_of_each_batch():
    study, _ = run_in_memory(screened_spec(budget=3, direction="minimize"))
    batches = defaultdict(list)
    for trial, record in records(study):
        batches[record["batch"]].append((trial, record))
    assert len(batches) == 3
    for members in batches.values():
        trained = [r["score"] for t, r in members if t.state == TrialState.COMPLETE]
        assert trained == [min(r["score"] for _, r in members)]
