"""``nas export`` on a real (small) evolution run: read-only, lineage in the card, kept weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import run_nas, write_spec

KEEP = 2


def spec(**evaluator) -> dict:
    return {
        "run": {"name": "evo", "budget": 6, "seed": 0},
        "space": {"name": "nasnet", "preset": "proxy"},
        "controller": {"name": "evolution", "population": 2, "sample": 2, "candidates": 1},
        "evaluator": {"name": "train", "data": "digits", "train_limit": 300, "valid_limit": 200,
                      "budget": {"epochs": 1}, **evaluator},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "executor": {"name": "inline"},
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export-run")
    path = write_spec(folder / "evo.toml", spec(keep_weights=KEEP))
    run_nas("search", str(path), "--out", str(folder / "evo"), check=True)
    return folder / "evo"


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file of a folder with its content hash and modification time."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() + str(p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def study(run: Path):
    from nas.export.exporter import open_ledger

    return open_ledger(run).study


def test_keep_weights_keeps_exactly_the_best_k(run):
    from optuna.trial import TrialState

    trials = study(run).get_trials(states=(TrialState.COMPLETE,))
    counted = sorted((t for t in trials if t.user_attrs["info"].get("counted")),
                     key=lambda t: (-t.values[0], t.user_attrs["metrics"]["loss"], t.number))
    kept = study(run).user_attrs["nas:weights"]
    assert sorted(map(int, kept)) == sorted(t.number for t in counted[:KEEP])
    files = sorted(p.name for p in (run / "artifacts").iterdir())
    assert files == sorted(e["artifact_id"] for e in kept.values())


def test_export_is_read_only_and_the_card_names_the_lineage(run, tmp_path):
    before = fingerprint(run)
    proc = run_nas("export", str(run), "--format", "json,onnx", "--weights", "--out", str(tmp_path / "best"),
                   "--json")
    assert proc.returncode == 0, proc.stderr
    assert fingerprint(run) == before
    result = json.loads(proc.stdout)[0]
    folder = Path(result["dir"])
    data = json.loads((folder / "arch.json").read_text())
    assert data["format"] == "nasforge-arch/1" and data["source"]["rank"] == 1
    assert result["checks"]["onnx"]["passed"]
    chain = data["source"]["lineage"]
    card = (folder / "MODEL_CARD.md").read_text()
    assert "## Lineage" in card and "opset" in card
    if data["source"]["parents"]:  # an evolved child: its parents are in the card
        assert chain and all(entry["arch_id"] in card for entry in chain)
    parented = [t for t in study(run).trials if t.system_attrs.get("nas:parents")]
    assert parented, "evolution recorded no parents"
    child = parented[-1]
    proc = run_nas("export", str(run), "--trial", str(child.number), "--out", str(tmp_path / "child"), check=True)
    card = (tmp_path / "child" / "MODEL_CARD.md").read_text()
    assert all(parent in card for parent in child.system_attrs["nas:parents"])


def test_exported_weights_reproduce_the_searched_accuracy(run, tmp_path):
    import torch

    import nas
    from evaluators.data import load

    run_nas("export", str(run), "--weights", "--out", str(tmp_path / "w"), check=True)
    data = json.loads((tmp_path / "w" / "arch.json").read_text())
    model = nas.load(str(tmp_path / "w" / "arch.json"))
    splits = load("digits", train_limit=300, valid_limit=200)
    with torch.no_grad():
        predicted = model(torch.from_numpy(splits.x_valid)).argmax(1).numpy()
    accuracy = 100.0 * (predicted == splits.y_valid).mean()
    assert accuracy == pytest.approx(data["metrics"]["accuracy"], abs=1e-6)


def test_export_says_whether_its_weights_are_trained(run, tmp_path):
    out = tmp_path / "o"
    proc = run_nas("export", str(run), "--format", "json,onnx", "--weights", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["weights"] == "trained" and (out / "weights.safetensors").is_file()
    # again into the same folder without --weights: the earlier weights file must not be taken for this one's
    proc = run_nas("export", str(run), "--format", "json,onnx", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)[0]
    assert result["weights"] == "untrained" and "weights.safetensors" not in result["files"]
    assert not (out / "weights.safetensors").exists()
    assert "weights" not in json.loads((out / "arch.json").read_text())
    proc = run_nas("export", str(run), "--format", "json,onnx", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.strip().startswith("weights:"))
    assert "model.onnx holds untrained (initial) weights" in line and "--weights" in line, proc.stdout
    proc = run_nas("export", str(run), "--weights", "--out", str(tmp_path / "w"))
    assert "weights: trained" in proc.stdout, proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--trial", "top:0"], "--trial"),
    (["--trial", "999"], "no trial #999"),
    (["--format", "json,tflite"], "--format"),
])
def test_bad_arguments_exit_2(run, tmp_path, args, message):
    proc = run_nas("export", str(run), *args, "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_out_inside_the_run_and_missing_weights_are_refused(run, tmp_path):
    proc = run_nas("export", str(run), "--out", str(run / "export"))
    assert proc.returncode == 2 and "inside the run folder" in proc.stderr
    assert not (run / "export").exists()
    path = write_spec(tmp_path / "plain.toml", {**spec(), "run": {"name": "plain", "budget": 1, "seed": 0}})
    run_nas("search", str(path), "--out", str(tmp_path / "plain"), check=True)
    proc = run_nas("export", str(tmp_path / "plain"), "--weights", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "keep_weights" in proc.stderr and "nas train" in proc.stderr


def test_a_run_in_progress_exports_its_best_so_far(run, tmp_path):
    import shutil

    import optuna

    from nas.ledger.store import open_storage

    copy = tmp_path / "live"
    shutil.copytree(run, copy)
    url = f"journal:{copy / 'study.journal'}"
    text = (copy / "spec.toml").read_text().replace(str(run / "study.journal"), str(copy / "study.journal"))
    (copy / "spec.toml").write_text(text)
    live = optuna.load_study(study_name="evo", storage=open_storage(url))
    live.ask()  # a driver is evaluating this one right now
    proc = run_nas("export", str(copy), "--out", str(tmp_path / "o"), "--json")
    assert proc.returncode == 0, proc.stderr
    best = max((t for t in live.trials if t.state.name == "COMPLETE"), key=lambda t: (t.values[0], -t.number))
    assert json.loads(proc.stdout)[0]["trial"] == best.number


def test_pareto_set_of_a_multi_objective_run(tmp_path, nb201_table):
    from tests.conftest import nb201_spec

    spec = nb201_spec(nb201_table, run={"name": "mo", "budget": 20, "seed": 0}, controller={"name": "nsga2"},
                      objectives=[{"metric": "test_acc", "direction": "maximize"},
                                  {"metric": "params", "direction": "minimize"}])
    path = write_spec(tmp_path / "mo.toml", spec)
    run_nas("search", str(path), "--out", str(tmp_path / "mo"), check=True)
    proc = run_nas("export", str(tmp_path / "mo"), "--trial", "pareto", "--out", str(tmp_path / "o"), "--json")
    assert proc.returncode == 0, proc.stderr
    exported = json.loads(proc.stdout)
    front = json.loads((tmp_path / "mo" / "summary.json").read_text())["pareto"]
    assert sorted(e["trial"] for e in exported) == sorted(r["number"] for r in front)
    for entry in exported:
        assert (Path(entry["dir"]) / "arch.json").is_file() and Path(entry["dir"]).name.startswith("trial-")
    proc = run_nas("export", str(tmp_path / "mo"), "--out", str(tmp_path / "b"))
    assert proc.returncode == 2 and "pareto" in proc.stderr
