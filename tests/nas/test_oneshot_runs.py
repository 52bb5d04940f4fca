"""One-shot runs end to end through the CLI: a supernet search and its ledger records, failing candidates,
a differentiable search killed and resumed, and bad one-shot specs."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from evaluators.oneshot.differentiable import search
from nas.config import validate
from nas.ledger.store import open_storage
from nas.oneshot import EPOCH_ATTR, FINAL_ATTR, RETRAINED_ATTR, epochs_of, retrained_of
from nas.oneshot.options import DIFFERENTIABLE, METHODS
from tests.conftest import run_nas, write_spec
from tests.nas.oneshot_space import MESSAGE

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATA = {"data": "digits", "train_limit": 256, "valid_limit": 128, "device": "cpu"}
OBJECTIVES = [{"metric": "accuracy", "direction": "maximize"}]


def supernet_spec(name: str, budget: int, **evaluator) -> dict:
    return {"run": {"name": name, "budget": budget, "seed": 1},
            "space": {"name": "nb201", "preset": "proxy"},
            "controller": {"name": "evolution", "population": 4, "sample": 2},
            "evaluator": {"name": "supernet", **DATA, "epochs": 2, "sampling": "fair", **evaluator},
            "objectives": OBJECTIVES}


def differentiable_spec(name: str, method: str, epochs: int, budget: int = 2) -> dict:
    return {"run": {"name": name, "budget": budget, "seed": 2, "report": False},
            "space": {"name": "nb201", "preset": "proxy"},
            "controller": {"name": method, **DATA, "epochs": epochs},
            "evaluator": {"name": "train", **DATA, "budget": {"epochs": 1}},
            "objectives": OBJECTIVES}


def load(folder: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(f"journal:{folder / 'study.journal'}"))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def wait_for(predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_a_supernet_search_records_its_training_every_candidate_and_the_retrained_best(tmp_path):
    folder = tmp_path / "spos"
    spec = write_spec(tmp_path / "spos.toml", supernet_spec("spos", 6, retrain_top=2, retrain_epochs=1))
    # what an earlier run left in this folder, which --overwrite must not reuse (a stale supernet, records)
    (folder / "oneshot").mkdir(parents=True)
    (folder / "spec.toml").write_text("")
    (folder / "oneshot" / "epochs.jsonl").write_text(json.dumps({"epoch": 7, "method": "spos"}) + "\n")
    proc = run_nas("search", str(spec), "--overwrite", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["evaluator"] == "supernet"
    assert summary["evaluated"] == 6 and summary["states"]["complete"] == 6 and summary["states"]["failed"] == 0
    shown = json.loads(run_nas("show", str(folder), "--json", check=True).stdout)
    assert shown["evaluated"] == 6 and shown["states"]["complete"] == 6

    saved = torch.load(folder / "oneshot" / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert saved["epoch"] == 2
    assert [r["epoch"] for r in lines(folder / "oneshot" / "epochs.jsonl")] == [1, 2]

    study = load(folder, "spos")
    attrs = study.user_attrs
    assert sorted(k for k in attrs if k.startswith(EPOCH_ATTR)) == [f"{EPOCH_ATTR}0001", f"{EPOCH_ATTR}0002"]
    epochs = epochs_of(attrs)
    assert [r["epoch"] for r in epochs] == [1, 2] and all(r["method"] == "spos" for r in epochs)
    assert all(math.isfinite(r["train_loss"]) for r in epochs)
    assert attrs["nas:oneshot:trained"]["epochs"] == 2

    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 6
    for trial in complete:  # every candidate is an ordinary trial, scored with inherited weights
        assert trial.user_attrs["info"]["inherited"] is True and trial.user_attrs["info"]["supernet_epochs"] == 2
        assert 0.0 <= trial.values[0] <= 100.0
    best_two = sorted(complete, key=lambda t: -t.values[0])[:2]
    retrained = retrained_of(attrs)
    assert set(retrained) == {t.number for t in best_two}
    assert len([k for k in attrs if k.startswith(RETRAINED_ATTR)]) == 2
    for metrics in retrained.values():
        assert "error" not in metrics and 0.0 <= metrics["accuracy"] <= 100.0


def test_a_failing_candidate_does_not_stop_a_supernet_search(tmp_path):
    data = supernet_spec("flaky", 8, epochs=1)
    data["run"]["report"] = False
    data["space"]["name"] = "tests.nas.oneshot_space:FlakySupernetSpace"
    data["controller"] = {"name": "random"}
    spec = write_spec(tmp_path / "flaky.toml", data)
    proc = run_nas("search", str(spec), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    study = load(tmp_path / "flaky", "flaky")
    failed = study.get_trials(states=(TrialState.FAIL,))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert failed, "seed 1's random candidates include avg_pool_3x3 on the first edge"
    assert complete and summary["states"]["failed"] == len(failed)
    for trial in failed:
        assert trial.user_attrs["genotype"]["ops"][0] == "avg_pool_3x3"
        assert trial.user_attrs["info"]["error"] == f"RuntimeError: {MESSAGE}"
    assert all(t.user_attrs["genotype"]["ops"][0] != "avg_pool_3x3" for t in complete)
    assert summary["evaluated"] == 8 == len(complete) + len(failed)  # a failed candidate uses its budget
    assert summary["states"]["running"] == 0


def test_a_killed_differentiable_search_resumes_from_its_checkpoint(tmp_path):
    epochs = 5
    data = differentiable_spec("dr", "drnas", epochs)
    spec = write_spec(tmp_path / "dr.toml", data)
    folder = tmp_path / "dr"
    saved = folder / "oneshot" / "checkpoint.pt"
    driver = subprocess.Popen([sys.executable, "-m", "nas", "search", str(spec)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: saved.is_file() or driver.poll() is not None, 120)
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    assert saved.is_file(), f"the search exited ({driver.returncode}) before its first checkpoint"
    reached = torch.load(saved, map_location="cpu", weights_only=False)
    assert 1 <= reached["epoch"] < epochs, "killed after the search ended: the test proves nothing"
    before = lines(folder / "oneshot" / "epochs.jsonl")
    assert [r["epoch"] for r in before[:reached["epoch"]]] == list(range(1, reached["epoch"] + 1))
    assert FINAL_ATTR not in load(folder, "dr").user_attrs

    proc = run_nas("resume", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    after = lines(folder / "oneshot" / "epochs.jsonl")
    numbers = [r["epoch"] for r in after]
    assert after[:reached["epoch"]] == before[:reached["epoch"]]  # what was checkpointed is kept as it was
    assert numbers[:reached["epoch"]] == list(range(1, reached["epoch"] + 1))
    resumed = numbers[reached["epoch"]:]  # a record written after the last checkpoint is written again
    assert resumed in (list(range(reached["epoch"] + 1, epochs + 1)),
                       [reached["epoch"] + 1] + list(range(reached["epoch"] + 1, epochs + 1)))
    assert all(numbers.count(e) == 1 for e in range(1, reached["epoch"] + 1))  # nothing before it recomputed

    study = load(folder, "dr")
    recorded = epochs_of(study.user_attrs)
    assert [r["epoch"] for r in recorded] == list(range(1, epochs + 1))
    assert recorded[:reached["epoch"]] == before[:reached["epoch"]]
    assert recorded[-1] == after[-1]
    final = study.user_attrs[FINAL_ATTR]
    assert final["genotype"] == after[-1]["genotype"] and final["probabilities"] == after[-1]["probabilities"]
    summary = json.loads(proc.stdout)
    assert summary["evaluated"] == 2 and summary["states"]["running"] == 0
    first = min(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    assert first.user_attrs["genotype"] == final["genotype"]  # the controller proposes the result first

    # the resumed search continued from the checkpoint's parameters and random state: it matches an
    # uninterrupted search with the same seed, epoch by epoch
    options = validate({k: v for k, v in data["controller"].items() if k != "name"},
                       {**DIFFERENTIABLE, **METHODS["drnas"]}, "controller")
    search("drnas", "nb201", {"preset": "proxy"}, options, data["run"]["seed"], str(tmp_path / "straight"))
    straight = lines(tmp_path / "straight" / "epochs.jsonl")

    def strip(records: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in records]

    assert strip(recorded) == strip(straight)


@pytest.mark.parametrize("change, field", [
    ({"controller": {"name": "darts", **DATA, "epochs": 0}}, "controller.epochs"),
    ({"controller": {"name": "gdas", **DATA, "tau_max": "x"}}, "controller.tau_max"),
    ({"controller": {"name": "random"}, "evaluator": {"name": "supernet", **DATA, "sampling": "sometimes"}},
     "evaluator.sampling"),
    ({"space": {"name": "randwire"}, "controller": {"name": "random"}, "evaluator": {"name": "supernet", **DATA}},
     "evaluator.name"),
    ({"space": {"name": "randwire"}}, "controller.name"),
    ({"controller": {"name": "darts", **DATA, "latency_weight": 1.0}}, "controller.latency_weight"),
])
def test_a_bad_one_shot_spec_exits_2_naming_the_field(tmp_path, change, field):
    data = differentiable_spec("bad", "darts", 1) | change
    spec = write_spec(tmp_path / "bad.toml", data)
    proc = run_nas("search", str(spec))
    assert proc.returncode == 2, proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1, proc.stderr
    assert re.match(rf"^nas: error: {re.escape(field)}: ", errors[0]), errors[0]
    assert not (tmp_path / "bad").exists()  # nothing was created


def test_a_differentiable_run_proposes_its_final_cell_then_samples_of_its_distribution(tmp_path):
    data = differentiable_spec("samples", "darts", epochs=1, budget=6)
    data["controller"]["samples"] = 2
    spec = write_spec(tmp_path / "samples.toml", data)
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), check=True)
    study = load(tmp_path / "run", "samples")
    final = study.user_attrs[FINAL_ATTR]
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    assert len(trials) == 3  # the final cell + `samples`, then the controller is exhausted below the budget
    assert trials[0].user_attrs["genotype"] == final["genotype"]
    assert len({t.user_attrs["arch_id"] for t in trials}) == 3
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert [r["epoch"] for r in epochs_of(study.user_attrs)] == [1]


def test_a_latency_target_binds_the_derived_cell_and_both_latencies_are_recorded(tmp_path):
    from tests.nas.test_latency_objectives import CONV_MS, handmade_table

    lut = handmade_table(tmp_path / "lut.json")  # nor_conv_3x3 costs CONV_MS per edge and stage, the rest ~0
    data = differentiable_spec("fast", "darts", epochs=3, budget=1)
    data["controller"].update(arch_lr=0.05, warmup=0.0, latency_weight=20.0, latency_target=1.5 * 3 * CONV_MS)
    data["latency"] = {"lut": str(lut)}
    spec = write_spec(tmp_path / "fast.toml", data)
    run_nas("search", str(spec), "--out", str(tmp_path / "run"), check=True)
    study = load(tmp_path / "run", "fast")
    records = epochs_of(study.user_attrs)
    assert all(r["derived_latency_ms"] is not None and r["expected_latency_ms"] is not None for r in records)
    final = study.user_attrs[FINAL_ATTR]
    assert final["derived_latency_ms"] <= 1.5 * 3 * CONV_MS  # at most one 3x3 convolution edge is left
    assert final["genotype_label"].count("nor_conv_3x3") <= 1
    (trial,) = study.get_trials(deepcopy=False)
    assert trial.user_attrs["metrics"]["latency_pred_ms"] <= 1.5 * 3 * CONV_MS + 0.5  # the table's own prediction
