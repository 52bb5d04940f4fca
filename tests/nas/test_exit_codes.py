"""Honest exit codes: input errors exit 2 with one line; internal errors are reported as bugs
(traceback, exit 1) and leave the run resumable."""

from __future__ import annotations

import json
import re

import click
import pytest
from click.testing import CliRunner

from nas.cli.base import handle_errors
from nas.config import SpecError
from tests.conftest import nb201_spec, run_nas, write_spec


def test_an_internal_error_shows_its_traceback_exits_1_and_the_run_resumes(tmp_path, nb201_table):
    data = nb201_spec(nb201_table, run={"budget": 12}, controller={"name": "tests.nas.faulty_controller:FaultyController"})
    spec = write_spec(tmp_path / "s.toml", data)
    folder = tmp_path / "run"
    proc = run_nas("search", str(spec), "--out", str(folder), env={"NAS_TEST_FAULT_AT": "7"})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr and "LinAlgError" in proc.stderr
    assert "a bug in nasforge" in proc.stderr.strip().splitlines()[-1]
    assert "nas resume" in proc.stderr.strip().splitlines()[-1]
    proc = run_nas("resume", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["evaluated"] == 12 and summary["states"]["running"] == 0


@pytest.mark.parametrize("error, code", [
    (SpecError("run.budget: expected an integer >= 1, got 0"), 2),
    (FileNotFoundError(2, "No such file or directory", "/nope.csv"), 2),
    (KeyError("arch_id"), 1),  # no longer taken for bad input
    (ValueError("math domain error"), 1),
    (RuntimeError("optuna.exceptions.UpdateFinishedTrialError"), 1),
])
def test_only_deliberate_input_errors_exit_2(error, code):
    @click.command()
    @handle_errors
    def verb() -> None:
        raise error

    result = CliRunner().invoke(verb, [])
    assert result.exit_code == code
    lines = result.output.strip().splitlines()
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("nas: error: ")
    else:
        assert "Traceback (most recent call last)" in result.output and "a bug in nasforge" in lines[-1]


def test_bad_genotype_and_space_options_are_input_errors(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"space": "nb201", "ops": [1, 2]}))
    proc = run_nas("describe", "--space", "nb201", "--arch-file", str(path))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


FAULTY_SPACE = "tests.nas.faulty_space:FaultySpace"


def test_a_bug_in_a_space_constructor_is_a_bug_not_bad_input(tmp_path, nb201_table):
    spec = write_spec(tmp_path / "s.toml", nb201_spec(nb201_table, space={"name": FAULTY_SPACE}))
    proc = run_nas("search", str(spec), "--out", str(tmp_path / "run"))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr and "KeyError: 'stem_width'" in proc.stderr
    assert "a bug in nasforge" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("option, message", [
    ({"stem": "pixel"}, r"^nas: error: space.stem: expected one of 'conv', 'patch', got 'pixel'$"),
    ({"channels": -1}, r"^nas: error: space.channels: expected an integer >= 0, got -1$"),
])
def test_a_bad_option_of_that_space_is_still_bad_input(tmp_path, nb201_table, option, message):
    spec = write_spec(tmp_path / "s.toml", nb201_spec(nb201_table, space={"name": FAULTY_SPACE, **option}))
    proc = run_nas("search", str(spec), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_plugin_space_check_raising_value_error_is_bad_input(monkeypatch):
    from nas import registry
    from search_spaces.nb201.space import NB201Space

    class Strict(NB201Space):
        @classmethod
        def check_options(cls, options):
            checked = super().check_options(options)
            if checked["cells"] == 3:
                raise ValueError("cells: 3 is unlucky")
            return checked

    monkeypatch.setattr(registry, "lookup", lambda *args, **kwargs: Strict)
    with pytest.raises(SpecError, match=r"^space: cells: 3 is unlucky$"):
        registry.make_space("strict", {"cells": 3})
    assert registry.make_space("strict", {"cells": 2}).cells == 2


@pytest.mark.parametrize("name, hinted", [("search", True), ("resume", True), ("report", False), ("export", False)])
def test_only_search_verbs_suggest_resume_after_a_bug(name, hinted):
    @click.command(name=name)
    @handle_errors
    def verb() -> None:
        raise KeyError("arch_id")

    result = CliRunner().invoke(verb, [], prog_name=name)
    assert result.exit_code == 1
    assert ("nas resume" in result.output.strip().splitlines()[-1]) is hinted
