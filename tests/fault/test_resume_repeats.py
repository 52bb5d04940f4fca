"""Resume repeats and loses nothing: an interrupted architecture is evaluated on resume by every
controller, and samplers' random streams continue instead of replaying the first run."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.controllers.history import GenotypeSampler
from nas.executors.inline import InlineExecutor
from nas.search.loop import Search, create_study
from nas.search.summary import evaluated_trials
from nas.search.spec import parse_spec
from nas.ledger.store import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


class InterruptAt(InlineExecutor):
    """The inline executor, stopped by Ctrl-C just before it would evaluate its ``at``-th job."""

    def __init__(self, at: int, **options) -> None:
        super().__init__(**options)
        self.at, self.calls, self.interrupted = at, 0, ""

    def collect(self, timeout=None):
        self.calls += 1
        if self.calls == self.at and self._queue:
            self.interrupted = self._queue[0].arch_id
            raise KeyboardInterrupt
        return super().collect(timeout)


def spec_for(controller: str, budget: int):
    return parse_spec({"run": {"name": "r", "budget": budget, "seed": 3}, "space": {"name": "nb201"},
                       "controller": {"name": controller}, "evaluator": {"name": "synthetic"},
                       "objectives": [{"metric": "score"}]}, Path("."))


def resume(spec, url: str) -> optuna.Study:
    storage = open_storage(url)
    study = create_study(spec, storage, stream=f"trials:{len(optuna.load_study(study_name='r', storage=storage).trials)}")
    Search(spec, study, InlineExecutor(), url, None).run()
    return study


@pytest.mark.parametrize("controller", ["random", "tpe", "evolution", "local", "guided"])
def test_an_interrupted_architecture_is_evaluated_on_resume(tmp_path, controller):
    url = f"journal:{tmp_path / 'study.journal'}"
    spec = spec_for(controller, 14)
    executor = InterruptAt(12)
    with pytest.raises(KeyboardInterrupt):
        Search(spec, create_study(spec, open_storage(url)), executor, url, None).run()
    assert executor.interrupted
    study = resume(spec, url)
    counted = evaluated_trials(study)
    ids = [t.user_attrs["arch_id"] for t in counted]
    assert executor.interrupted in ids  # repeated, not lost
    assert len(ids) == len(set(ids)) == 14
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_history_samplers_may_propose_an_interrupted_architecture_again(tmp_path):
    url = f"journal:{tmp_path / 'study.journal'}"
    spec = spec_for("evolution", 6)
    executor = InterruptAt(4)
    study = create_study(spec, open_storage(url))
    with pytest.raises(KeyboardInterrupt):
        Search(spec, study, executor, url, None).run()
    sampler = study.sampler
    assert isinstance(sampler, GenotypeSampler)
    seen = sampler.history(study, None).seen
    assert executor.interrupted not in seen
    assert {t.user_attrs["arch_id"] for t in evaluated_trials(study)} <= seen


@pytest.mark.parametrize("controller", ["random", "tpe"])
def test_resumed_samplers_continue_their_stream(tmp_path, controller):
    url = f"journal:{tmp_path / 'study.journal'}"
    first = spec_for(controller, 10)
    Search(first, create_study(first, open_storage(url)), InlineExecutor(), url, None).run()
    study = resume(spec_for(controller, 20), url)
    trials = study.trials
    assert trials[10].params != trials[0].params  # a replay would propose trial 0's architecture again
    assert not [t for t in trials if "duplicate_of" in t.user_attrs.get("info", {})]
    assert len(evaluated_trials(study)) == 20
