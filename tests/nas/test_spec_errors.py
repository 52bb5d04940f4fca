"""Bad specs exit with status 2 and one line naming the field and what is allowed."""

from __future__ import annotations

import pytest

from tests.conftest import nb201_spec, run_nas, write_spec


@pytest.mark.parametrize("change, message", [
    ({"run": {"budget": "ten"}}, r"run.budget: expected an integer >= 1, got 'ten'"),
    ({"run": {"budget": 0}}, r"run.budget: expected an integer >= 1, got 0"),
    ({"run": {"colour": "red"}}, r"run.colour: unknown key; allowed: budget, description, deterministic, max_failures"),
    ({"space": {"name": "nb202"}}, r"space.name: unknown space 'nb202'; known: .*nb201"),
    ({"space": {"preset": "huge"}}, r"space.preset: expected one of 'cifar10'"),
    ({"controller": {"name": "evolve"}}, r"controller.name: unknown controller 'evolve'; known: .*evolution"),
    ({"controller": {"name": "evolution", "population": 1}}, r"controller.population: expected an integer >= 2"),
    ({"controller": {"name": "evolution", "population": 5, "sample": 9}}, r"controller.sample: expected 1 <= sample"),
    ({"evaluator": {"name": "tabulr"}}, r"evaluator.name: unknown evaluator 'tabulr'; known: .*tabular"),
    ({"evaluator": {"table": "/nonexistent/table.csv"}}, r"evaluator.table: file not found: /nonexistent/table.csv"),
    ({"evaluator": {"metrics": ["acc"]}}, r"evaluator.metrics: column 'acc' not in"),
    ({"objectives": [{"metric": "accuracy"}]}, r"objectives\[0\].metric: unknown metric 'accuracy'"),
    ({"objectives": [{"metric": "test_acc", "direction": "up"}]}, r"objectives\[0\].direction: expected one of"),
    ({"constraints": {"test_acc": {"max": 1}}}, r"constraints.test_acc: bounds are allowed on cheap metrics only"),
    ({"objectives": [{"metric": "r", "reward": {"cost": "flops"}}]}, r"objectives\[0\].reward.target: required"),
    ({"objectives": [{"metric": "r", "reward": {"accuracy": "acc", "target": 1e8}}]},
     r"objectives\[0\].reward.accuracy: unknown metric .acc."),
    ({"executor": {"name": "slurm"}}, r"executor.name: unknown executor 'slurm'"),
    ({"executor": {"name": "inline", "workers": 4}}, r"executor.workers: the inline executor runs 1 trial"),
    ({"pruner": {"name": "median", "n_warmup_steps": -1}}, r"pruner.n_warmup_steps: expected an integer >= 0"),
    ({"sampler": {}}, r"sampler: unknown section; allowed: run, space"),
])
def test_bad_spec_exits_2_naming_the_field(tmp_path, nb201_table, change, message):
    spec = write_spec(tmp_path / "bad.toml", nb201_spec(nb201_table, **change))
    proc = run_nas("search", str(spec))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("nas: error: ")
    assert __import__("re").search(message, lines[0]), lines[0]
    assert not (tmp_path / "t").exists()  # nothing was created


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nbudget = 3\n")
    proc = run_nas("search", str(bad))
    assert proc.returncode == 2 and "invalid TOML" in proc.stderr
    proc = run_nas("search", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "missing.toml: spec file not found" in proc.stderr


def test_bad_cli_values_exit_2(tmp_path, nb201_table):
    spec = write_spec(tmp_path / "ok.toml", nb201_spec(nb201_table))
    assert run_nas("search", str(spec), "--budget", "x").returncode == 2
    assert run_nas("search", str(spec), "--executor", "mpi").returncode == 2
    proc = run_nas("show", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no such run folder" in proc.stderr


@pytest.mark.parametrize("data, message", [
    ({"data": "fashion-mnist", "data_dir": "/nonexistent/fm"},
     r"evaluator.data_dir: fashion-mnist: /nonexistent/fm/train-images-idx3-ubyte\[.gz\] not found"),
    ({"data": "npz", "data_dir": "/nonexistent/x.npz"}, r"evaluator.data_dir: .*/nonexistent/x.npz"),
])
def test_missing_data_exits_2_and_leaves_no_half_made_run(tmp_path, data, message):
    spec = write_spec(tmp_path / "data.toml", {
        "run": {"name": "t", "budget": 2}, "space": {"name": "nasnet", "preset": "proxy"},
        "controller": {"name": "random"}, "evaluator": {"name": "train", **data},
        "objectives": [{"metric": "accuracy"}]})
    for _ in range(2):  # the second attempt meets the same error, not "a run already exists here"
        proc = run_nas("search", str(spec))
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and __import__("re").search(message, lines[0]), proc.stderr
        assert not (tmp_path / "t").exists()


def test_unreachable_storage_exits_2_and_leaves_no_run_folder(tmp_path, nb201_table):
    spec = write_spec(tmp_path / "s.toml", nb201_spec(nb201_table))
    proc = run_nas("search", str(spec), "--storage", "bogus://nowhere")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "t").exists()
    assert run_nas("search", str(spec), "--budget", "3").returncode == 0  # a corrected run starts cleanly
