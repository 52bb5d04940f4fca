"""The issue's first report: a second driver started on a copy of a running run folder (what a
second node does) with an SQLite study must neither fail the first driver's trials nor repeat work."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
import time

import optuna

from nas.search.summary import evaluated_trials
from nas.ledger.store import open_storage
from tests.conftest import run_nas, write_spec


def test_resume_of_a_copied_folder_joins_the_running_driver(tmp_path):
    budget = 16
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    spec = write_spec(tmp_path / "sq.toml", {
        "run": {"name": "sq", "budget": budget, "seed": 0, "storage": url}, "space": {"name": "nb201"},
        "controller": {"name": "evolution", "population": 5, "sample": 2},
        "evaluator": {"name": "synthetic", "seconds": 0.3}, "objectives": [{"metric": "score"}]})
    first = subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec), "--out", str(tmp_path / "one")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (tmp_path / "one" / "driver.json").exists() and (tmp_path / "shared.db").exists():
            storage = open_storage(url)
            if storage.get_all_studies() and len(evaluated_trials(optuna.load_study(study_name="sq", storage=storage))) >= 2:
                break
        time.sleep(0.2)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    second = subprocess.run([sys.executable, "-m", "nas", "resume", str(tmp_path / "two")], capture_output=True,
                            text=True, timeout=240)
    assert first.wait(timeout=240) == 0, first.stderr.read()
    assert second.returncode == 0, second.stderr

    study = optuna.load_study(study_name="sq", storage=open_storage(url))
    counted = evaluated_trials(study)
    per_arch = collections.Counter(t.user_attrs["arch_id"] for t in counted)
    assert len(counted) == budget and max(per_arch.values()) == 1
    assert not [t for t in study.trials if "interrupted" in str(t.user_attrs.get("info", {}).get("error"))]
    assert len({t.system_attrs["nas:claim"]["driver"] for t in counted}) == 2

    before = (tmp_path / "shared.db").read_bytes()
    shown = run_nas("show", str(tmp_path / "two"), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["evaluated"] == budget
    assert (tmp_path / "shared.db").read_bytes() == before  # read-only: SQLite opened with mode=ro
