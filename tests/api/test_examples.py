"""The examples run as shipped: as scripts, inline and on Ray."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import nas
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_notebook_api_example(tmp_path):
    proc = run_example("notebook_api.py", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert "stopped: budget" in proc.stdout and "best: trial #" in proc.stdout
    assert (tmp_path / "run-best" / "arch.json").is_file() and (tmp_path / "run" / "report.html").is_file()
    assert len(nas.open(tmp_path / "run").trials()) == 4


def test_own_training_example(tmp_path):
    proc = run_example("own_training.py", "--out", str(tmp_path / "run"), cwd=tmp_path)
    run = nas.open(tmp_path / "run")
    assert run.spec.evaluator["name"] == "function" and run.outcome is None
    assert [t["state"] for t in run.trials()] == ["complete"] * 3
    assert run.best["metrics"]["accuracy"] > 50 and "best of 3: trial #" in proc.stdout


@pytest.mark.xdist_group("ray")
def test_own_training_example_on_ray(tmp_path):
    """The function is the script's own (``__main__``): Ray sends it to the workers by value."""
    run_example("own_training.py", "--executor", "ray", "--out", str(tmp_path / "run"), cwd=tmp_path)
    run = nas.open(tmp_path / "run")
    assert run.spec.executor["name"] == "ray" and [t["state"] for t in run.trials()] == ["complete"] * 3


@pytest.mark.xdist_group("ray")
def test_notebook_api_example_on_ray(tmp_path, ray_session):
    from examples import notebook_api

    run = notebook_api.main("ray", str(tmp_path / "run"))
    assert run.spec.executor["name"] == "ray" and [t["state"] for t in run.trials()] == ["complete"] * 4
