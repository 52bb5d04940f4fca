"""The tabular evaluator: lookups, unknown architectures, missing columns, malformed tables."""

from __future__ import annotations

import json

import pytest

from evaluators.tabular import Table, TabularEvaluator
from nas.config import SpecError
from nas.evaluator import COMPLETE, FAILED, NullReporter
from search_spaces.nb201.genotype import NB201Genotype
from search_spaces.nb201.space import NB201Space
from tests.conftest import run_nas

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
B = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(f"arch,test_acc,valid_acc\n{A},94.37,91.5\n{B},10.0,10.0\n")
    return path


def evaluator(table, **options):
    return TabularEvaluator(NB201Space(), {"table": str(table), **options})


def test_lookup_returns_the_row(table):
    result = evaluator(table).evaluate(NB201Genotype.parse(A).to_json(), {}, NullReporter())
    assert result.state == COMPLETE
    assert result.metrics == {"test_acc": 94.37, "valid_acc": 91.5}


def test_selected_metrics_only(table):
    result = evaluator(table, metrics=["valid_acc"]).evaluate(NB201Genotype.parse(B).to_json(), {}, NullReporter())
    assert result.metrics == {"valid_acc": 10.0}


def test_unknown_architecture_is_a_failed_trial_naming_it(table):
    other = NB201Genotype(("skip_connect",) * 6)
    result = evaluator(table).evaluate(other.to_json(), {}, NullReporter())
    assert result.state == FAILED
    assert other.to_string() in result.error and "not in table" in result.error


def test_missing_column_names_the_column_and_the_columns(table):
    with pytest.raises(SpecError, match=r"evaluator.metrics: column 'acc' not in .*columns: test_acc, valid_acc"):
        evaluator(table, metrics=["acc"])


@pytest.mark.parametrize("content, message", [
    ("name,acc\nx,1\n", "expected a header 'arch"),
    (f"arch,acc\n{A},high\n", r"t.csv:2: non-numeric"),
    (f"arch,acc\n{A},1,2\n", r"t.csv:2: expected 2 fields"),
    ("arch,acc\n", "no rows"),
])
def test_malformed_tables_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        Table.read(path)


def test_missing_table_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="table not found"):
        Table.read(tmp_path / "nope.csv")


def test_real_table_optimum(nb201_table):
    assert Table.read(nb201_table).best("test_acc") == pytest.approx(94.3733)


def test_load_reads_a_table_once_until_the_file_changes(table):
    first = Table.load(table)
    assert Table.load(table) is first
    table.write_text(f"arch,test_acc\n{A},50.0\n")  # another size: read again
    again = Table.load(table)
    assert again is not first and again.rows[A] == {"test_acc": 50.0}
    with pytest.raises(FileNotFoundError, match="table not found"):
        Table.load(table.parent / "nope.csv")


@pytest.mark.parametrize("bad, message", [
    ("foo", r"t.csv:3: 'foo' is not an architecture of space 'nb201': nb201 string"),
    (A.replace("nor_conv_1x1", "conv_7x7"), r"t.csv:3: .* is not an architecture of space 'nb201'"),
    (f" {A.replace('|+|', '| + |')}", r"t.csv:3: .* is not in nb201's text form \(expected '\|nor_conv_3x3~0\|\+"),
])
def test_rows_that_are_not_architectures_of_the_space_name_file_and_line(tmp_path, bad, message):
    path = tmp_path / "t.csv"
    path.write_text(f"arch,acc\n{B},10\n{bad},50\nbar,60\n")
    table = Table.read(path)
    with pytest.raises(SpecError, match=message):
        table.check_archs(NB201Space())


def test_the_real_table_holds_only_architectures_of_the_space(nb201_table):
    Table.load(nb201_table).check_archs(NB201Space())


def test_bench_controllers_on_a_table_of_other_rows_exits_2_naming_the_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(f"arch,test_acc\n{A},94.37\n{B},10.0\nfoo,99.0\n")
    proc = run_nas("bench", "controllers", "--table", str(path), "--seeds", "1", "--budget", "5",
                   "--controllers", "random", "--json")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and proc.stderr.strip().splitlines() == [
        f"nas: error: {path}:4: 'foo' is not an architecture of space 'nb201': nb201 string: expected 3 "
        "'+'-separated nodes, got 'foo'"]
    path.write_text(f"arch,test_acc\n{A},94.37\n{B},10.0\n")  # the same table without the bad row runs
    proc = run_nas("bench", "controllers", "--table", str(path), "--seeds", "1", "--budget", "5",
                   "--controllers", "random", "--json", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["optimum"] == 94.37
