"""The tabular evaluator: lookups, unknown architectures, missing columns, malformed tables."""

from __future__ import annotations

import pytest

from evaluators.tabular import Table, TabularEvaluator
from nas.config import SpecError
from nas.evaluator import COMPLETE, FAILED, NullReporter
from search_spaces.nb201.genotype import NB201Genotype
from search_spaces.nb201.space import NB201Space

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
