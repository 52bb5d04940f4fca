"""Tabular benchmark evaluator: look an architecture up in a CSV table ``arch,<metric columns>``.

The ``arch`` column holds the space's text form (``SearchSpace.label``), e.g. NAS-Bench-201's
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``. No training happens, so whole searches run in seconds.
"""

from __future__ import annotations

import csv
import logging
import math
import random
from pathlib import Path
from typing import Any, Mapping

from nas.config import Field, SpecError
from nas.evaluator import COMPLETE, Evaluator, Reporter, Result
from nas.space import SearchSpace

log = logging.getLogger(__name__)

_LOADED: dict[tuple[str, int, int], Table] = {}  # Table.load's tables by (path, mtime, size)


class Table:
    """Rows of a benchmark table: arch text -> {metric: value}."""

    def __init__(self, path: str, rows: dict[str, dict[str, float]], columns: tuple[str, ...],
                 lines: dict[str, int] | None = None) -> None:
        self.path, self.rows, self.columns = path, rows, columns
        self.lines = lines or {}  # arch text -> its line in the file (1: the header)

    @classmethod
    def read(cls, path: str | Path) -> Table:
        """Parse the CSV; ``ValueError`` names the file and line of any malformed row."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"table not found: {path}")
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header or header[0].strip() != "arch" or len(header) < 2:
                raise SpecError(f"{path}: expected a header 'arch,<metric>,...', got {header!r}")
            columns = tuple(h.strip() for h in header[1:])
            rows: dict[str, dict[str, float]] = {}
            lines: dict[str, int] = {}
            for line, record in enumerate(reader, start=2):
                if not record:
                    continue
                if len(record) != len(header):
                    raise SpecError(f"{path}:{line}: expected {len(header)} fields, got {len(record)}")
                try:
                    values = [float(v) for v in record[1:]]
                except ValueError:
                    raise SpecError(f"{path}:{line}: non-numeric metric in {record[1:]!r}") from None
                rows[record[0].strip()] = dict(zip(columns, values))
                lines.setdefault(record[0].strip(), line)
        if not rows:
            raise SpecError(f"{path}: the table has no rows")
        return cls(str(path), rows, columns, lines)

    @classmethod
    def load(cls, path: str | Path) -> Table:
        """:meth:`read`, once per process for an unchanged file (benchmarks run many searches on one
        table; a table is never modified after reading)."""
        path = Path(path).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"table not found: {path}")
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _LOADED:
            if len(_LOADED) >= 4:
                _LOADED.pop(next(iter(_LOADED)))
            _LOADED[key] = cls.read(path)
        return _LOADED[key]

    def check_archs(self, space: SearchSpace) -> None:
        """Require every row to hold an architecture of ``space`` in its text form (``label``, read
        back by the space's ``parse``); ``SpecError`` names the file and line of the first that does not.

        A space whose ``parse`` does not read its labels back cannot be checked (a warning says so).
        """
        parse = getattr(space, "parse", None)
        if parse is None or not _reads_labels(space, parse):
            log.warning("%s: rows not checked: space %r cannot read its text form back", self.path, space.name)
            return
        for text, line in sorted(self.lines.items(), key=lambda item: item[1]):
            try:
                again = space.label(parse(text))
            except ValueError as err:
                raise SpecError(f"{self.path}:{line}: {text!r} is not an architecture of space "
                                f"{space.name!r}: {err}") from None
            if again != text:
                raise SpecError(f"{self.path}:{line}: {text!r} is not in {space.name}'s text form "
                                f"(expected {again!r}); the evaluator would never find it")

    def best(self, column: str, maximize: bool = True) -> float:
        """The optimum of ``column`` over the table."""
        values = [row[column] for row in self.rows.values() if math.isfinite(row[column])]
        return max(values) if maximize else min(values)


def _reads_labels(space: SearchSpace, parse: Any) -> bool:
    """Whether ``parse`` reads back the labels of ``space`` (tried on one seeded sample)."""
    label = space.label(space.sample(random.Random(0)))
    try:
        return space.label(parse(label)) == label
    except ValueError:
        return False


def read_header(path: str) -> tuple[str, ...]:
    """Metric columns of a table, reading only its first line."""
    with open(path, newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header or header[0].strip() != "arch" or len(header) < 2:
        raise SpecError(f"evaluator.table: {path}: expected a header 'arch,<metric>,...', got {header!r}")
    return tuple(h.strip() for h in header[1:])


class TabularEvaluator(Evaluator):
    """Looks architectures up in a table; unknown architectures become failed trials.

    Options: ``table`` (CSV path), ``metrics`` (columns to return; all by default).
    """

    OPTIONS = {
        "table": Field("file", help="CSV file with an 'arch' column and metric columns"),
        "metrics": Field(list, default=[], items=str, help="columns to report (default: all)"),
    }

    def __init__(self, space: SearchSpace, options: Mapping[str, Any], shared: Any = None) -> None:
        super().__init__(space, options, shared)
        self.table: Table = shared if shared is not None else Table.load(self.options["table"])
        self.columns = self.metric_names(self.options, self.table.columns)

    @classmethod
    def metric_names(cls, options: Mapping[str, Any], columns: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The metrics this evaluator will report; ``SpecError`` for a column the table lacks."""
        columns = columns if columns is not None else read_header(options["table"])
        wanted = tuple(options.get("metrics") or columns)
        for name in wanted:
            if name not in columns:
                raise SpecError(f"evaluator.metrics: column {name!r} not in {options['table']}; "
                                f"columns: {', '.join(columns)}")
        return wanted

    @classmethod
    def load_shared(cls, options: Mapping[str, Any]) -> Table:
        return Table.load(options["table"])

    def metrics(self) -> tuple[str, ...]:
        return self.columns

    def evaluate(self, genotype_json: str, budget: Mapping[str, Any], reporter: Reporter) -> Result:
        key = self.space.label(self.space.from_json(genotype_json))
        row = self.table.rows.get(key)
        if row is None:
            return Result.failed(f"architecture {key} not in table {self.table.path}")
        return Result(COMPLETE, {name: row[name] for name in self.columns})
