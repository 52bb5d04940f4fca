"""Crash safety: a driver killed with SIGKILL mid-search is resumed without losing or repeating work."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState

from nas.search.summary import evaluated_trials
from nas.search.spec import load_spec
from nas.ledger.store import open_storage
from tests.conftest import run_nas, write_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def spec_data(budget: int) -> dict:
    return {"run": {"name": "crash", "budget": budget, "seed": 4}, "space": {"name": "nb201"},
            "controller": {"name": "evolution", "population": 10, "sample": 3},
            "evaluator": {"name": "synthetic", "seconds": 0.2}, "objectives": [{"metric": "score"}]}


def load(folder):
    storage = open_storage(f"journal:{folder / 'study.journal'}")
    return optuna.load_study(study_name="crash", storage=storage)


def wait_for(predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def test_sigkill_then_resume_finishes_the_budget_without_loss_or_repeats(tmp_path):
    budget = 60
    spec = write_spec(tmp_path / "crash.toml", spec_data(budget))
    folder = tmp_path / "crash"
    driver = subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        # kill while a trial is running (each lasts 0.2 s, so it still runs when the signal lands)
        wait_for(lambda: (folder / "study.journal").exists() and len(evaluated_trials(load(folder))) >= 20
                 and any(t.state == TrialState.RUNNING for t in load(folder).trials), 120)
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    before = {t.number: t.user_attrs["arch_id"] for t in evaluated_trials(load(folder))}
    assert 20 <= len(before) < budget
    stale = [t.number for t in load(folder).trials if t.state == TrialState.RUNNING]
    assert stale, "the driver should have died with a trial running"

    proc = run_nas("resume", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr

    study = load(folder)
    counted = evaluated_trials(study)
    ids = [t.user_attrs["arch_id"] for t in counted]
    assert len(counted) == budget
    assert len(set(ids)) == budget  # no architecture evaluated twice
    after = {t.number: t.user_attrs["arch_id"] for t in counted}
    assert all(after.get(n) == a for n, a in before.items())  # nothing completed was lost
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    for number in stale:  # left running by the dead driver: failed, not counted, budget reused
        trial = study.trials[number]
        assert trial.state == TrialState.FAIL and trial.user_attrs["info"]["counted"] is False
        assert trial.user_attrs["info"]["error"].startswith("interrupted")
    for trial in study.trials:
        if trial.number not in after and trial.state == TrialState.FAIL:
            assert trial.user_attrs["info"]["counted"] is False
            assert trial.user_attrs["info"]["error"].startswith("interrupted")


def test_search_refuses_an_existing_run_and_points_to_resume(tmp_path):
    spec = write_spec(tmp_path / "crash.toml", {**spec_data(5), "evaluator": {"name": "synthetic"}})
    assert run_nas("search", str(spec)).returncode == 0
    proc = run_nas("search", str(spec))
    assert proc.returncode == 2
    assert "nas resume" in proc.stderr and "--overwrite" in proc.stderr
    assert run_nas("search", str(spec), "--overwrite").returncode == 0
    assert len(evaluated_trials(load(tmp_path / "crash"))) == 5


def test_resume_can_raise_the_budget(tmp_path):
    spec = write_spec(tmp_path / "crash.toml", {**spec_data(5), "evaluator": {"name": "synthetic"}})
    run_nas("search", str(spec), check=True)
    run_nas("resume", str(tmp_path / "crash"), "--budget", "12", check=True)
    assert len(evaluated_trials(load(tmp_path / "crash"))) == 12


def test_journal_with_a_torn_last_line_is_repaired(tmp_path):
    spec = write_spec(tmp_path / "crash.toml", {**spec_data(5), "evaluator": {"name": "synthetic"}})
    run_nas("search", str(spec), check=True)
    journal = tmp_path / "crash" / "study.journal"
    with journal.open("ab") as handle:  # what a kill in the middle of a write leaves behind
        handle.write(b'{"op_code": 5, "worker_id": "x", "trial_id": 1, "us')
    run_nas("resume", str(tmp_path / "crash"), "--budget", "8", check=True)
    assert len(evaluated_trials(load(tmp_path / "crash"))) == 8


def test_resume_of_a_folder_without_a_run(tmp_path):
    proc = run_nas("resume", str(tmp_path))
    assert proc.returncode == 2 and "not a run folder" in proc.stderr


def test_a_copied_run_folder_resumes_on_its_own_copy_of_the_journal(tmp_path):
    spec = write_spec(tmp_path / "crash.toml", spec_data(6) | {"evaluator": {"name": "synthetic", "seconds": 0}})
    folder = tmp_path / "crash"
    assert run_nas("search", str(spec)).returncode == 0
    assert not load_spec(folder / "spec.toml").run["storage"]  # the folder's own journal, not its path
    copy = tmp_path / "elsewhere" / "crash"
    shutil.copytree(folder, copy)
    original = (folder / "study.journal").read_bytes()
    proc = run_nas("resume", str(copy), "--budget", "9", "--json")
    assert proc.returncode == 0, proc.stderr
    assert (folder / "study.journal").read_bytes() == original  # the original ledger is untouched
    assert len(evaluated_trials(load(copy))) == 9 and len(evaluated_trials(load(folder))) == 6
