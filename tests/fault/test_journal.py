"""Journal safety: readers never write (not even on a folder that is not a run); only a driver
holding the run repairs a torn last line, cutting nothing but that line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import optuna
import pytest

from nas.search.summary import evaluated_trials
from nas.ledger.store import RunDir, open_storage, open_study_readonly, repair_journal
from nas.search.spec import load_spec
from tests.conftest import run_nas, write_spec

TORN = b'{"op_code":5,"worker_id":"dead","trial_id":3,"sta'


def listing(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("journal")
    spec = write_spec(root / "j.toml", {
        "run": {"name": "j", "budget": 8, "seed": 1}, "space": {"name": "nb201"}, "controller": {"name": "random"},
        "evaluator": {"name": "synthetic"}, "objectives": [{"metric": "score"}]})
    run_nas("search", str(spec), check=True)
    return root / "j"


def test_show_leaves_the_run_byte_identical(finished_run):
    before = listing(finished_run)
    for args in ((), ("--json",)):
        proc = run_nas("show", str(finished_run), *args)
        assert proc.returncode == 0, proc.stderr
    assert listing(finished_run) == before  # study.journal included; no lock or new file either


def test_show_writes_nothing_where_there_is_no_run(tmp_path, finished_run):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_nas("show", str(empty)).returncode == 2
    assert not list(empty.iterdir())
    no_journal = tmp_path / "no-journal"
    no_journal.mkdir()
    (no_journal / "spec.toml").write_bytes((finished_run / "spec.toml").read_bytes().replace(
        str(finished_run).encode(), str(no_journal).encode()))
    proc = run_nas("show", str(no_journal))
    assert proc.returncode == 2 and "study.journal" in proc.stderr
    assert [p.name for p in no_journal.iterdir()] == ["spec.toml"]


def test_readonly_study_refuses_writes(finished_run):
    study = open_study_readonly(finished_run, load_spec(RunDir(finished_run).spec_file))
    assert len(evaluated_trials(study)) == 8
    with pytest.raises(PermissionError):
        study.set_user_attr("x", 1)


def test_torn_line_is_skipped_by_readers_and_repaired_by_resume_only(tmp_path, finished_run):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("spec.toml", "study.journal"):
        data = (finished_run / name).read_bytes()
        (folder / name).write_bytes(data.replace(str(finished_run).encode(), str(folder).encode()))
    journal = folder / "study.journal"
    whole = journal.read_bytes()
    journal.write_bytes(whole + TORN)  # a writer killed mid-line
    torn = journal.read_bytes()

    assert run_nas("show", str(folder)).returncode == 0
    open_storage(f"journal:{journal}")  # a worker's or another process's open does not repair either
    assert journal.read_bytes() == torn

    proc = run_nas("resume", str(folder), "--budget", "10")
    assert proc.returncode == 0, proc.stderr
    repaired = journal.read_bytes()
    assert repaired.startswith(whole) and TORN not in repaired  # only the torn line was cut
    study = optuna.load_study(study_name="j", storage=open_storage(f"journal:{journal}"))
    assert len(evaluated_trials(study)) == 10


def test_repair_cuts_only_the_torn_line_even_after_a_long_line(tmp_path):
    journal = tmp_path / "long.journal"
    long_line = json.dumps({"op_code": 0, "pad": "x" * (3 << 20)}).encode() + b"\n"  # longer than 1 MiB
    journal.write_bytes(b'{"op_code":0}\n' + long_line + b"y" * (2 << 20))  # torn tail longer than 1 MiB
    assert repair_journal(str(journal)) == 2 << 20
    assert journal.read_bytes() == b'{"op_code":0}\n' + long_line
    assert repair_journal(str(journal)) == 0

    whole_record = tmp_path / "nl.journal"
    whole_record.write_bytes(b'{"op_code":0}\n{"op_code":1}')  # complete, only its newline missing
    assert repair_journal(str(whole_record)) == 0
    assert whole_record.read_bytes() == b'{"op_code":0}\n{"op_code":1}\n'
    assert not Path(str(whole_record) + ".lock").exists()  # Optuna's lock was taken and released
