"""Fault tests on a real Ray cluster of a head and two worker nodes on this machine
(``ray.cluster_utils.Cluster``): a worker node leaves mid-search; the driver is SIGKILLed while a
repeated architecture is parked behind an in-flight one. Both searches end with exactly their
budget of unique architectures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.ledger._optuna import journal_op_code
from nas.search.summary import evaluated_trials
from nas.ledger.store import open_storage
from tests.conftest import run_nas, write_spec

pytestmark = pytest.mark.xdist_group("ray")

HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000, "health_check_failure_threshold": 3}


@pytest.fixture(scope="module")
def cluster():
    """Head (1 CPU) and two worker nodes (3 CPUs each), all on this machine."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                            "_system_config": HEALTH})
    for _ in range(2):
        cluster.add_node(num_cpus=3)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def synthetic_spec(path: Path, name: str, budget: int, seconds: float, controller: str = "random") -> Path:
    return write_spec(path, {
        "run": {"name": name, "budget": budget, "seed": 0, "max_failures": budget + 1},
        "space": {"name": "nb201"}, "controller": {"name": controller},
        "evaluator": {"name": "synthetic", "seconds": seconds}, "objectives": [{"metric": "score"}],
        "executor": {"name": "ray", "workers": 3}})


def journal_ops(journal: Path) -> list[dict]:
    """The journal's operations (a torn last line, being written, is left out)."""
    if not journal.exists():
        return []
    ops = []
    for line in journal.read_text().splitlines():
        try:
            ops.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return ops


def count(ops: list[dict], op: str) -> int:
    """How many of ``ops`` are journal operation ``op`` (e.g. ``"SET_TRIAL_STATE_VALUES"``)."""
    return sum(o.get("op_code") == journal_op_code(op) for o in ops)


def arch_ids(ops: list[dict]) -> dict[int, str]:
    """Trial id -> arch id, for the trials proposed so far."""
    return {o["trial_id"]: o["user_attr"]["arch_id"] for o in ops
            if o.get("op_code") == journal_op_code("SET_TRIAL_USER_ATTR") and "arch_id" in o["user_attr"]}


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def check_ledger(journal: Path, name: str, budget: int) -> list:
    study = optuna.load_study(study_name=name, storage=open_storage(f"journal:{journal}"))
    counted = evaluated_trials(study)
    ids = [t.user_attrs["arch_id"] for t in counted]
    assert len(counted) == budget and len(set(ids)) == budget, ids
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    return counted


def test_sigkilled_driver_with_a_parked_repeat_resumes_to_its_budget(tmp_path, cluster):
    spec = synthetic_spec(tmp_path / "k.toml", "k", budget=6, seconds=4.0,
                          controller="tests.fault.repeat_controller:RepeatController")
    folder, journal = tmp_path / "k", tmp_path / "k" / "study.journal"
    driver = subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec), "--ray-address", cluster.address,
                               "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # trials 0 (A, submitted), 1 (A again: parked behind 0) and 2 (B, submitted); none finished yet
        wait_for(lambda: len(arch_ids(journal_ops(journal))) >= 3, 120, "three proposed trials")
        ops = journal_ops(journal)
        assert count(ops, "SET_TRIAL_STATE_VALUES") == 0, "a trial finished before the kill"
        arch = arch_ids(ops)
        assert arch[0] == arch[1] != arch[2]
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    assert driver.returncode == -signal.SIGKILL
    proc = run_nas("resume", str(folder), "--ray-address", cluster.address, "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["evaluated"] == 6
    check_ledger(journal, "k", 6)


def _worker_nodes_with_workers(cluster) -> tuple[dict[str, int], str]:
    """Worker actors per node id (alive ones), and the node the driver is attached to."""
    per_node: dict[str, int] = {}
    driver_node = ""
    for actor in cluster.global_state.actor_table(None, actor_state_name="ALIVE").values():
        if actor["ActorClassName"].endswith("_Worker"):
            per_node[actor["Address"]["NodeID"]] = per_node.get(actor["Address"]["NodeID"], 0) + 1
            driver_node = actor["OwnerAddress"]["NodeID"]
    return per_node, driver_node


def test_a_worker_node_leaving_mid_search_loses_and_repeats_nothing(tmp_path, cluster):
    budget = 24
    spec = synthetic_spec(tmp_path / "n.toml", "n", budget=budget, seconds=1.5)
    journal = tmp_path / "n" / "study.journal"
    driver = subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec), "--ray-address", cluster.address,
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: count(journal_ops(journal), "SET_TRIAL_STATE_VALUES") >= 4, 180,
                 "four finished trials")
        per_node, driver_node = _worker_nodes_with_workers(cluster)
        leaving = [n for n in cluster.worker_nodes if per_node.get(n.node_id) and n.node_id != driver_node]
        assert leaving, f"no worker node holds a worker apart from the driver's: {per_node}"
        cluster.remove_node(leaving[0], allow_graceful=False)  # SIGKILL: the node dies, it does not drain
        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    assert out.strip().startswith("{"), out[:2000]
    assert json.loads(out)["evaluated"] == budget
    counted = check_ledger(journal, "n", budget)
    assert all(t.state == TrialState.COMPLETE for t in counted), [t.user_attrs["info"].get("error") for t in counted]
    assert len({t.user_attrs["info"]["worker"] for t in counted}) > 3  # workers were restarted elsewhere
    # the trial that was running on the lost node was run again: by Ray's own retries when its actor
    # restarted elsewhere in time, else by the executor ("running it again on another worker")
