"""The Python API: nas.search (a path, a dict, a RunSpec; the command line's options), nas.open (read-only),
nas.resume, the Run's best/trials/study/export/report, bad input, and the CLI as a layer over it."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

import nas
from nas.config import SpecError
from nas.search.spec import load_spec
from tests.api import loaded_after
from tests.conftest import nb201_spec, run_nas, write_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)
KEYS = {"number", "state", "values", "metrics", "arch_id", "genotype"}


def _files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``folder``: its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_import_nas_loads_neither_torch_nor_the_search_core():
    lazy = ("import nas\nnas.search, nas.open, nas.resume, nas.load, nas.SpecError\n"
            "assert callable(nas.search) and nas.search.__name__ == 'nas.search'")
    assert loaded_after(lazy, ("torch", "optuna", "nas.api")) == "[]"
    assert loaded_after("import nas.api; nas.Run", ("torch", "evaluators.function")) == "[]"


def test_nas_search_is_the_package_and_the_function():
    import nas.search.loop
    from nas.search.spec import RunSpec

    assert callable(nas.search) and nas.search.spec.RunSpec is RunSpec  # submodules by attribute, as before
    assert nas.search.loop.Search.__module__ == "nas.search.loop"
    with pytest.raises(SpecError, match=r"^spec: expected a TOML file's path"):
        nas.search(42)


def test_a_path_a_dict_and_a_run_spec_give_the_same_search(tmp_path, nb201_table):
    data = nb201_spec(nb201_table, run={"name": "same", "budget": 12})
    path = write_spec(tmp_path / "same.toml", data)
    by_path = nas.search(path, progress=False)
    by_dict = nas.search(data, out=tmp_path / "dict", progress=False)
    spec = load_spec(path)
    by_spec = nas.search(spec, out=tmp_path / "spec", progress=False)
    again = nas.search(spec, out=tmp_path / "spec-again", progress=False)  # the object was not changed by its search
    assert by_path.path == tmp_path / "same"  # beside the spec, as nas search does
    assert {r.best["arch_id"] for r in (by_path, by_dict, by_spec, again)} == {by_path.best["arch_id"]}
    assert [t["arch_id"] for t in by_dict.trials()] == [t["arch_id"] for t in by_path.trials()]
    assert spec.run["storage"] == "" and again.spec.run["storage"] == ""


def test_the_run_has_best_trials_study_and_outcome(tmp_path, nb201_table):
    run = nas.search(nb201_spec(nb201_table, run={"name": "r", "budget": 10}), out=tmp_path / "r", progress=False)
    assert run.outcome.reason == "budget" and run.outcome.evaluated == 10
    assert KEYS <= set(run.best) and run.best["state"] == "complete"
    assert run.best["values"]["test_acc"] == max(t["values"]["test_acc"] for t in run.trials() if t["values"])
    trials = run.trials()
    assert len(trials) == len(run.study.trials) >= 10 and all(KEYS <= set(t) for t in trials)
    assert [t["number"] for t in trials] == list(range(len(trials)))
    assert {t["state"] for t in trials} <= {"complete", "failed"}  # failed: repeats answered from the ledger
    assert run.summary()["best"]["number"] == run.best["number"]
    assert run.study.best_trial.number == run.best["number"]


def test_overrides_are_the_command_lines_options(tmp_path, nb201_table):
    data = nb201_spec(nb201_table, run={"name": "o", "budget": 30})
    run = nas.search(data, out=tmp_path / "o", budget=6, seed=3, workers=None, progress=False,
                     **{"run.max_failures": 7, "run.description": "from Python"})
    assert (run.spec.budget, run.spec.seed, run.spec.run["max_failures"]) == (6, 3, 7)
    assert run.outcome.evaluated == 6 and data["run"]["budget"] == 30  # the caller's dict is left alone
    with pytest.raises(SpecError, match=r"^budgett: unknown option; known: budget, seed"):
        nas.search(data, out=tmp_path / "x", budgett=5)
    with pytest.raises(SpecError, match=r"^executor.workers: the inline executor runs 1 trial"):
        nas.search(data, out=tmp_path / "x", workers=2)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("change, message", [
    ({"space": {"name": "nb999"}}, r"^space.name: unknown space .nb999."),
    ({"evaluator": {"name": "tabular", "tabel": "x.csv"}}, r"^evaluator.tabel: unknown key"),
    ({"run": {"name": "b", "budget": 0}}, r"^run.budget: expected an integer >= 1"),
    ({"objectives": [{"metric": "nope"}]}, r"^objectives\[0\].metric: unknown metric 'nope'"),
    ({"evaluator": {"name": "function", "function": "no colon"}}, r"^evaluator.function: expected 'package.module"),
])
def test_bad_input_raises_spec_error_naming_the_field(tmp_path, nb201_table, change, message):
    with pytest.raises(SpecError, match=message):
        nas.search(nb201_spec(nb201_table, **change), out=tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_an_existing_run_is_refused_unless_overwritten(tmp_path, nb201_table):
    data = nb201_spec(nb201_table, run={"name": "e", "budget": 3})
    nas.search(data, out=tmp_path / "e", progress=False)
    with pytest.raises(SpecError, match="a run already exists here"):
        nas.search(data, out=tmp_path / "e")
    assert nas.search(data, out=tmp_path / "e", overwrite=True, budget=4, progress=False).outcome.evaluated == 4


def test_open_reads_and_never_writes(tmp_path, nb201_table):
    folder = nas.search(nb201_spec(nb201_table, run={"name": "ro", "budget": 8}), out=tmp_path / "ro",
                        progress=False).path
    before = _files(folder)
    run = nas.open(folder)
    assert run.best["arch_id"] and len(run.trials()) >= 8 and run.summary()["evaluated"] == 8
    exported = run.export(tmp_path / "exported", trial="top:2", formats="json")
    assert [Path(r["dir"]).name for r in exported] == [f"trial-{r['trial']:04d}" for r in exported] and len(exported) == 2
    assert (Path(exported[0]["dir"]) / "arch.json").is_file()
    with pytest.raises(PermissionError):
        run.study.set_user_attr("x", 1)
    with pytest.raises(SpecError, match="inside the run folder"):
        run.export(folder / "inside")
    assert _files(folder) == before
    page = run.report(tmp_path / "page.html")
    assert page == (tmp_path / "page.html").resolve() and "<html" in page.read_text()[:200].lower()
    assert _files(folder) == before
    with pytest.raises(SpecError, match="not a run folder"):
        nas.open(tmp_path)


def test_resume_continues_to_a_raised_budget(tmp_path, nb201_table):
    first = nas.search(nb201_spec(nb201_table, run={"name": "c", "budget": 5}), out=tmp_path / "c", progress=False)
    more = nas.resume(first.path, budget=9, progress=False)
    assert more.outcome.evaluated == 9 and more.spec.budget == 9
    assert [t["arch_id"] for t in more.trials()][:len(first.trials())] == [t["arch_id"] for t in first.trials()]


def test_the_cli_is_a_layer_over_the_api(tmp_path, nb201_table):
    """``nas search`` and ``nas.search`` give the same trials; ``nas show --json`` is ``Run.summary()``."""
    data = nb201_spec(nb201_table, run={"name": "cli", "budget": 10})
    spec = write_spec(tmp_path / "cli.toml", data)
    proc = run_nas("search", str(spec), "--budget", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["stopped"] == "budget"
    python = nas.search(data, out=tmp_path / "py", budget=8, progress=False)
    cli = nas.open(tmp_path / "cli")
    assert [t["arch_id"] for t in cli.trials()] == [t["arch_id"] for t in python.trials()]
    shown = json.loads(run_nas("show", str(tmp_path / "cli"), "--json", check=True).stdout)
    assert shown == cli.summary()
    bad = run_nas("search", str(spec), "--out", str(tmp_path / "bad"), "--workers", "3")
    assert bad.returncode == 2 and bad.stderr.startswith("nas: error: executor.workers:")


def test_a_search_from_python_prints_no_optuna_chatter(tmp_path, nb201_table):
    """Optuna's "A new study created ..." INFO line is the run log's business, not the user's terminal;
    the caller's Optuna verbosity is left as it was."""
    import subprocess
    import sys

    path = write_spec(tmp_path / "quiet.toml", nb201_spec(nb201_table, run={"name": "quiet", "budget": 3}))
    code = ("import optuna, nas\nnas.search(%r, progress=False)\n"
            "assert optuna.logging.get_verbosity() == optuna.logging.INFO" % str(path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "A new study created" not in proc.stderr
