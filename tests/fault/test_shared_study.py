"""Several drivers on one study in a real PostgreSQL server (directly and through Optuna's gRPC
proxy): the study's budget is met exactly, no architecture is evaluated twice, no live driver's
trial is failed; the server going away stops a driver with one line, and ``nas resume`` finishes."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.ledger.shared import CLAIM_ATTR
from nas.search.summary import evaluated_trials
from nas.ledger.store import open_storage
from tests.conftest import run_nas, write_spec

pytestmark = pytest.mark.xdist_group("postgres")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def grid_spec(name: str, budget: int, seconds: float) -> dict:
    """Grid search over EfficientNet's compound coefficients: every driver walks the same grid in the
    same order, so they propose the same architectures at the same moments (the hardest case)."""
    return {"run": {"name": name, "budget": budget, "seed": 0},
            "space": {"name": "scaling", "preset": "proxy", "search": "coefficients", "phi": 1.0},
            "controller": {"name": "grid"},
            "evaluator": {"name": "synthetic", "seconds": seconds}, "objectives": [{"metric": "score"}]}


def evolution_spec(name: str, budget: int, seconds: float) -> dict:
    return {"run": {"name": name, "budget": budget, "seed": 0}, "space": {"name": "nb201"},
            "controller": {"name": "evolution", "population": 5, "sample": 2},
            "evaluator": {"name": "synthetic", "seconds": seconds}, "objectives": [{"metric": "score"}]}


def start_driver(spec: Path, url: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec), "--storage", url, "--join",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_drivers(tmp_path: Path, data: dict, url: str, drivers: int = 2) -> list[tuple[int, str]]:
    spec = write_spec(tmp_path / f"{data['run']['name']}.toml", data)
    procs = [start_driver(spec, url, tmp_path / f"driver{i}") for i in range(drivers)]
    return [(p.wait(timeout=240), p.communicate()[1]) for p in procs]


def check_shared(url: str, name: str, budget: int) -> dict:
    """The shared study's invariants; returns counts for the record."""
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    counted = evaluated_trials(study)
    per_arch = collections.Counter(t.user_attrs["arch_id"] for t in counted)
    doubles = sum(n - 1 for n in per_arch.values())
    owners = collections.Counter(t.system_attrs[CLAIM_ATTR]["driver"] for t in counted)
    interrupted = [t.number for t in study.trials if "interrupted" in str(t.user_attrs.get("info", {}).get("error"))]
    assert doubles == 0, f"{doubles} architecture(s) evaluated twice: {per_arch.most_common(3)}"
    assert len(counted) == budget
    assert not interrupted, f"live drivers' trials failed as stale: {interrupted}"
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len(owners) == 2, f"both drivers should have evaluated: {owners}"
    skipped = sum("skipped" in str(t.user_attrs.get("info", {}).get("error")) for t in study.trials)
    print(f"\n{name}: {len(counted)} evaluated, {doubles} double evaluations, {skipped} withdrawn claims, "
          f"per driver {sorted(owners.values())}")
    return {"doubles": doubles, "skipped": skipped}


def test_two_drivers_share_one_postgresql_study(tmp_path, postgres):
    # evolution on a shared SQLite study: tests/fault/test_shared_sqlite.py
    name, budget = "shared-grid", 12
    results = run_drivers(tmp_path, grid_spec(name, budget, 0.2), postgres.url)
    for code, err in results:
        assert code == 0, err
    check_shared(postgres.url, name, budget)
    shown = run_nas("show", str(tmp_path / "driver0"), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["evaluated"] == budget


def test_two_drivers_through_the_grpc_proxy(tmp_path, postgres, grpc_proxy):
    results = run_drivers(tmp_path, grid_spec("shared-grpc", 12, 0.2), grpc_proxy)
    for code, err in results:
        assert code == 0, err
    check_shared(postgres.url, "shared-grpc", 12)


def test_storage_outage_stops_the_driver_and_resume_finishes(tmp_path, own_postgres):
    budget = 30
    spec = write_spec(tmp_path / "outage.toml", evolution_spec("outage", budget, 0.1))
    folder = tmp_path / "outage"
    driver = subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec), "--storage", own_postgres.url,
                               "--out", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage = open_storage(own_postgres.url)
    deadline = time.time() + 120
    while time.time() < deadline:
        studies = storage.get_all_studies()
        if studies and len(evaluated_trials(optuna.load_study(study_name="outage", storage=storage))) >= 5:
            break
        time.sleep(0.2)
    own_postgres.stop()
    try:
        code = driver.wait(timeout=60)
    finally:
        driver.kill()
    err = driver.communicate()[1]
    assert code not in (0, None)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and "run.storage: lost" in lines[-1] and "nas resume" in lines[-1], err

    own_postgres.start()
    proc = run_nas("resume", str(folder), timeout=240)
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="outage", storage=open_storage(own_postgres.url))
    counted = evaluated_trials(study)
    assert len(counted) == budget
    assert len({t.user_attrs["arch_id"] for t in counted}) == budget
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
