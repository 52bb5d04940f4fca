"""Matched compute on predicted latency: the latency tables of a comparison (torch-free).

A table from ``nas latency build-lut`` is valid for one space, preset, set of space options and
input shape, and the width is one of those options; so matching an arm's width on latency needs a
table per width. ``compare.match.lut`` names them by a path pattern holding ``{width}``
(``luts/nasnet-w{width}.json``: every file the pattern matches is one width); a path without it is
a single table, and only its own width can be chosen. Arms of several spaces (or with other space
options, such as a cell vocabulary) need their own tables: ``lut`` may be a table keyed by arm name
or space name (the arm's name wins). Every table must fit its arm's space, preset, options and the
comparison's input shape (:meth:`nas.latency.table.LatencyTable.check`), and all of them must have been
measured alike (backend, device, batch, threads), or the latencies would not be comparable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nas.config import SpecError
from nas.latency.table import LatencyTable
from nas.space import width_of

WIDTH = "{width}"


class LatencyTables:
    """The tables a comparison's ``[compare.match] lut`` names, loaded and checked on first use."""

    def __init__(self, lut: str | dict[str, str], task: Any) -> None:
        self.lut = lut
        self.task = task
        self._tables: dict[str, LatencyTable] = {}
        self._setting: tuple[str, tuple[Any, ...]] | None = None  # (first table's path, how it was measured)

    def pattern(self, arm: str, space: str, where: str) -> tuple[str, str]:
        """(the field, the path pattern) of an arm's tables."""
        if isinstance(self.lut, str):
            return "compare.match.lut", self.lut
        for key in (arm, space):
            if key in self.lut:
                return f"compare.match.lut.{key}", self.lut[key]
        raise SpecError(f"compare.match.lut: no latency table for {where} (space {space!r}); give one under "
                        f"its arm name or space name, e.g. lut = {{{space} = \"luts/{space}-w{{width}}.json\"}}")

    def widths(self, arm: str, space: Any, where: str) -> dict[int, str]:
        """The widths the arm's tables cover, each with its file."""
        field, pattern = self.pattern(arm, space.name, where)
        if WIDTH not in pattern:
            table = self.load(pattern, field)
            knob = space.WIDTH_OPTION
            width = int(table.space_options.get(knob) or 0) if knob else 0
            if not width:
                from nas import registry

                width = width_of(registry.make_space(table.space, dict(table.space_options)))
            return {width: pattern}
        folder, name = Path(pattern).parent, Path(pattern).name
        regex = re.compile("^" + re.escape(name).replace(re.escape(WIDTH), r"(\d+)") + "$")
        found = {}
        if folder.is_dir():
            for path in folder.iterdir():
                hit = regex.match(path.name)
                if hit and path.is_file():
                    found[int(hit.group(1))] = str(path)
        if not found:
            raise FileNotFoundError(f"{field}: no latency table matches {pattern}")
        return dict(sorted(found.items()))

    def load(self, path: str, field: str) -> LatencyTable:
        """A table, loaded once; ``SpecError`` if measured unlike the comparison's other tables."""
        if path not in self._tables:
            try:
                table = LatencyTable.load(path)
            except (SpecError, ValueError, FileNotFoundError) as err:
                raise SpecError(f"{field}: {err}") from None
            setting = (table.backend, table.device, table.batch, table.threads, table.stat)
            if self._setting is None:
                self._setting = (path, setting)
            elif self._setting[1] != setting:
                raise SpecError(f"{field}: {path} was measured as {setting}, {self._setting[0]} as "
                                f"{self._setting[1]} (backend, device, batch, threads, stat): latencies measured "
                                "differently cannot be matched")
            self._tables[path] = table
        return self._tables[path]

    def check(self, arm: str, space: Any, path: str, where: str) -> LatencyTable:
        """The table ``path``; ``SpecError`` unless it fits ``space`` (the width applied) and the task."""
        field, _ = self.pattern(arm, space.name, where)
        table = self.load(path, field)
        try:
            table.check(space, self.task)
        except SpecError as err:
            raise SpecError(f"{field} for {where}: {err}") from None
        return table

    def predict(self, arm: str, space: Any, genotype: Any, path: str, where: str) -> float:
        """Predicted latency (ms) of ``genotype`` in ``space`` (the width applied) from the table ``path``."""
        table = self.check(arm, space, path, where)
        try:
            return table.predict(space, genotype, self.task)
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None
