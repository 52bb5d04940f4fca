"""Shared fixtures. A test that needs something missing fails under CI=true and skips locally, saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# One torch/OpenMP thread per test process: xdist already runs one process per core, and torch's
# worker threads spin-wait when the cores are oversubscribed (10x slower, measured).
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NB201_TABLE = SHARED / "data" / "nb201" / "cifar10.csv"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Fail in CI, skip locally, when a test's prerequisite is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing prerequisite in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def nb201_table() -> Path:
    need(NB201_TABLE.is_file(), f"NAS-Bench-201 table not found at {NB201_TABLE}")
    return NB201_TABLE


@pytest.fixture(scope="session")
def runtime_rules() -> Any:
    """ONNX Runtime's CPU optimizer rules detected on this machine (as ``build-lut`` stores them)."""
    from evaluators.runtime_probe import detect
    from evaluators.timing import Settings

    return detect(Settings(backend="onnxruntime"))


def run_nas(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run the ``nas`` CLI in a subprocess (the same interpreter) and capture its output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "nas", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"nas {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_spec(path: Path, data: dict[str, Any]) -> Path:
    """Write a spec dict as TOML."""
    import tomli_w

    path.write_text(tomli_w.dumps(data))
    return path


def nb201_spec(table: Path, **sections: Any) -> dict[str, Any]:
    """A small NB201 tabular spec; keyword sections replace/extend the defaults."""
    spec: dict[str, Any] = {
        "run": {"name": "t", "budget": 30, "seed": 0},
        "space": {"name": "nb201"},
        "controller": {"name": "evolution"},
        "evaluator": {"name": "tabular", "table": str(table)},
        "objectives": [{"metric": "test_acc", "direction": "maximize"}],
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


def load_json(text: str) -> Any:
    return json.loads(text)


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance shared by this test process (the executor leaves it running)."""
    import ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
