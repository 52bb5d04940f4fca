"""The Ray executor on a real local Ray instance."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from nas.executors.ray import RayExecutor
from nas.search.loop import Search, create_study
from nas.search.summary import evaluated_trials
from nas.search.spec import parse_spec
from nas.ledger.store import open_storage
from tests.conftest import nb201_spec, run_nas, write_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.xdist_group("ray")


def synthetic(tmp_path, executor: dict, pruner: dict | None = None, **evaluator):
    data = {"run": {"name": "r", "budget": 8, "seed": 0, "max_failures": 100}, "space": {"name": "nb201"},
            "controller": {"name": "random"}, "evaluator": {"name": "synthetic", **evaluator},
            "objectives": [{"metric": "score"}], "executor": {"name": "ray", **executor}}
    if pruner:
        data["pruner"] = pruner
    spec = parse_spec(data, tmp_path)
    url = f"journal:{tmp_path / 'r.journal'}"
    study = create_study(spec, open_storage(url))
    outcome = Search(spec, study, RayExecutor(**{k: v for k, v in spec.executor.items() if k != "name"}), url).run()
    return study, outcome


def test_search_on_local_ray_end_to_end(tmp_path, nb201_table):
    spec = write_spec(tmp_path / "ray.toml", nb201_spec(nb201_table, run={"name": "ray", "budget": 50}))
    proc = run_nas("search", str(spec), "--executor", "ray", "--workers", "2", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["evaluated"] == 50 and summary["best"]["values"]["test_acc"] > 90
    study = optuna.load_study(study_name="ray", storage=open_storage(f"journal:{tmp_path / 'ray/study.journal'}"))
    workers = {t.user_attrs["info"]["worker"] for t in evaluated_trials(study)}
    assert 1 <= len(workers) <= 2  # evaluated on the Ray workers, not in the driver
    assert len({t.user_attrs["arch_id"] for t in evaluated_trials(study)}) == 50


def test_a_trial_whose_worker_dies_is_retried(tmp_path, ray_session):
    study, outcome = synthetic(tmp_path, {"workers": 2, "retries": 2}, crash_dir=str(tmp_path / "crashes"))
    counted = evaluated_trials(study)
    assert outcome.reason == "budget"
    assert [t.state for t in counted] == [TrialState.COMPLETE] * 8
    assert len(list((tmp_path / "crashes").iterdir())) == 8  # every first attempt killed its worker


def test_a_worker_dying_on_every_retry_fails_only_its_trial(tmp_path, ray_session):
    study, outcome = synthetic(tmp_path, {"workers": 2, "retries": 0}, crash_dir=str(tmp_path / "crashes"))
    counted = evaluated_trials(study)
    assert len(counted) == 8
    assert all(t.state == TrialState.FAIL and "worker died" in t.user_attrs["info"]["error"] for t in counted)


def test_per_trial_timeout_fails_the_trial_and_replaces_the_worker(tmp_path, ray_session, monkeypatch):
    started = []
    new_worker = RayExecutor._new_worker

    def counted_worker(self):
        started.append(1)
        return new_worker(self)

    monkeypatch.setattr(RayExecutor, "_new_worker", counted_worker)
    study, _ = synthetic(tmp_path, {"workers": 2, "timeout": 1.0}, seconds=30.0)
    counted = evaluated_trials(study)
    assert len(counted) == 8
    # cut off by the executor's own limit (a trial left to sleep its 30 s would complete)
    assert all("timeout: still running after 1 s" in t.user_attrs["info"]["error"] for t in counted)
    assert len(started) == 2 + 8  # the 2 workers of the pool, and one in place of each worker a timeout killed


def test_pruning_reaches_the_study_from_remote_workers(tmp_path, ray_session):
    study, _ = synthetic(tmp_path, {"workers": 2}, pruner={"name": "median", "n_startup_trials": 2,
                                                           "n_warmup_steps": 0}, steps=4, seconds=0.2)
    counted = evaluated_trials(study)
    assert all(t.intermediate_values for t in counted)
    assert any(t.state == TrialState.PRUNED for t in counted)


def test_ctrl_c_stops_workers_and_leaves_a_resumable_run(tmp_path):
    data = {"run": {"name": "int", "budget": 30, "seed": 1}, "space": {"name": "nb201"},
            "controller": {"name": "random"}, "evaluator": {"name": "synthetic", "seconds": 0.5},
            "objectives": [{"metric": "score"}], "executor": {"name": "ray", "workers": 2}}
    spec = write_spec(tmp_path / "int.toml", data)
    journal, log = tmp_path / "int" / "study.journal", tmp_path / "int" / "search.log"
    # A test process may have inherited SIGINT ignored (a background job, some test runners' workers),
    # and a Python started with SIGINT ignored keeps ignoring it: give the driver a terminal's default.
    driver = subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline:  # Ctrl-C mid-search: after the first trials are in (search.log)
        if log.exists() and log.read_text().count(" complete ") >= 3:
            break
        time.sleep(0.2)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err
    assert "nas resume" in err
    proc = run_nas("resume", str(tmp_path / "int"), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="int", storage=open_storage(f"journal:{journal}"))
    counted = evaluated_trials(study)
    assert len(counted) == 30 and len({t.user_attrs["arch_id"] for t in counted}) == 30
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_a_dead_attempts_reports_do_not_reach_the_pruner_of_its_retry(tmp_path, ray_session):
    # every first attempt reports 1.0 (the best score) for 2 of 4 steps, then its worker dies
    study, outcome = synthetic(tmp_path, {"workers": 2, "retries": 2},
                               pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
                               steps=4, crash_dir=str(tmp_path / "crashes"), crash_after=2)
    counted = evaluated_trials(study)
    assert outcome.reason == "budget" and len(counted) == 8
    for trial in counted:  # the retry's own curve (NaN past where a pruned retry stopped), no stale 1.0
        values = list(trial.intermediate_values.values())
        assert all(v < 1.0 or math.isnan(v) for v in values) and not math.isnan(values[0]), values
    # with the stale 1.0s the pruner would see each trial's best value as 1.0 and never prune
    assert any(t.state == TrialState.PRUNED for t in counted)


def test_an_unreachable_ray_address_fails_fast_with_one_line(tmp_path, nb201_table, monkeypatch):
    import socket

    import ray

    from nas.config import SpecError
    from nas.executors import _ray_cluster as ray_cluster

    with socket.socket() as sock:  # a free port: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = write_spec(tmp_path / "s.toml", nb201_spec(nb201_table))
    proc = run_nas("search", str(spec), "--ray-address", f"127.0.0.1:{port}", timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"executor.address: no Ray cluster answers at '127.0.0.1:{port}'" in lines[0]
    assert not (tmp_path / "t").exists()
    # fast: the address is probed (one TCP connection) before Ray, which retries for minutes, is asked to join it
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: pytest.fail("ray.init tried an address nothing answers at"))
    monkeypatch.setattr(ray_cluster, "_cluster_messages_to_stderr", lambda: None)  # this process's Ray output as is
    with pytest.raises(SpecError, match=f"no Ray cluster answers at '127.0.0.1:{port}'"):
        ray_cluster._connect(f"127.0.0.1:{port}", False)


def test_a_local_instance_runs_its_workers_at_normal_priority(tmp_path):
    """Ray's default worker niceness (15) starves the trials on a host with other work; a local
    instance started by the executor runs them at nice 0 unless RAY_worker_niceness says otherwise."""
    code = ("import os, ray; from nas.executors.ray import _connect; _connect('', False); "
            "print(ray.get(ray.remote(lambda: os.nice(0)).remote())); ray.shutdown()")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("RAY_worker_niceness", "RAY_ADDRESS")}
    base = __import__("os").nice(0)  # Ray adds the worker niceness to the raylet's own
    for setting, expected in ((None, str(base)), ("7", str(min(base + 7, 19)))):
        if setting is not None:
            env["RAY_worker_niceness"] = setting
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split()[-1] == expected


def test_a_pre_screen_scores_on_the_ray_workers(tmp_path, ray_session):
    from nas.evaluator import worker_name

    data = {"run": {"name": "r", "budget": 3, "seed": 0}, "space": {"name": "nb201", "preset": "proxy"},
            "controller": {"name": "local"}, "evaluator": {"name": "synthetic"}, "objectives": [{"metric": "score"}],
            "executor": {"name": "ray", "workers": 2},
            "prescreen": {"proxy": "synflow", "batch": 4, "keep": 1, "threads": 1}}
    spec = parse_spec(data, tmp_path)
    url = f"journal:{tmp_path / 'r.journal'}"
    study = create_study(spec, open_storage(url))
    outcome = Search(spec, study, RayExecutor(**{k: v for k, v in spec.executor.items() if k != "name"}), url).run()
    assert outcome.reason == "budget" and len(evaluated_trials(study)) == 3
    records = [t.user_attrs["prescreen"] for t in study.trials if "prescreen" in t.user_attrs]
    assert len(records) == 12 and all(r["score"] > 0 for r in records)
    assert {r["worker"] for r in records} and worker_name() not in {r["worker"] for r in records}
    assert sum(t.state == TrialState.PRUNED for t in study.trials) == 9
