"""Option schemas: types, ranges, unknown keys, durations and files, each error naming its path."""

from __future__ import annotations

import pytest

from nas.config import Field, SpecError, parse_duration, validate

FIELDS = {
    "count": Field(int, default=3, min=1, max=10),
    "rate": Field(float, default=0.5, min=0.0),
    "mode": Field(str, default="a", choices=("a", "b")),
    "flag": Field(bool, default=False),
    "names": Field(list, default=[], items=str),
    "need": Field(str),
}


def test_defaults_filled_and_ints_accepted_as_floats():
    out = validate({"need": "x", "rate": 1}, FIELDS, "sec")
    assert out == {"count": 3, "rate": 1.0, "mode": "a", "flag": False, "names": [], "need": "x"}
    assert isinstance(out["rate"], float)


@pytest.mark.parametrize("table, message", [
    ({"need": "x", "count": "3"}, r"sec.count: expected an integer >= 1 and <= 10, got '3'"),
    ({"need": "x", "count": True}, r"sec.count: expected an integer"),
    ({"need": "x", "count": 11}, r"sec.count: expected an integer >= 1 and <= 10, got 11"),
    ({"need": "x", "rate": -1.0}, r"sec.rate: expected a number >= 0"),
    ({"need": "x", "mode": "c"}, r"sec.mode: expected one of 'a', 'b', got 'c'"),
    ({"need": "x", "names": ["a", 1]}, r"sec.names\[1\]: expected a string"),
    ({"need": "x", "colour": 1}, r"sec.colour: unknown key; allowed: count, flag, mode, names, need, rate"),
    ({}, r"sec.need: required"),
])
def test_errors_name_the_field_and_what_is_allowed(table, message):
    with pytest.raises(SpecError, match=message):
        validate(table, FIELDS, "sec")


@pytest.mark.parametrize("text, seconds", [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("2m", 120.0),
                                           ("1.5h", 5400.0), ("1d", 86400.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_duration():
    with pytest.raises(SpecError, match="run.max_time: expected a duration"):
        parse_duration("soon", "run.max_time")


def test_file_fields_resolve_against_the_base_dir(tmp_path):
    (tmp_path / "t.csv").write_text("x")
    out = validate({"table": "t.csv"}, {"table": Field("file")}, "evaluator", base_dir=tmp_path)
    assert out["table"] == str(tmp_path / "t.csv")
    with pytest.raises(SpecError, match=r"evaluator.table: file not found: .*missing.csv"):
        validate({"table": "missing.csv"}, {"table": Field("file")}, "evaluator", base_dir=tmp_path)
