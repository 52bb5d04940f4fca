"""Declarative option schemas: check a TOML table field by field and name the path of what is wrong.

Every pluggable part (space, controller, evaluator, executor, pruner) declares its options as a
``dict[str, Field]``; :func:`validate` fills defaults, rejects unknown keys and wrong types, and
raises :class:`SpecError` whose message starts with the dotted path of the offending field.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

REQUIRED = object()

_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "a boolean",
               list: "a list", dict: "a table"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


class SpecError(ValueError):
    """Invalid run spec or option table; the message starts with the field's dotted path.

    The one deliberate input-error type: the CLI turns it (and missing files) into one line and
    exit status 2; any other exception is a bug (traceback, exit status 1).
    """


@contextlib.contextmanager
def input_errors(prefix: str = "") -> Iterator[None]:
    """Treat ``ValueError``/``KeyError`` raised inside as bad input (``SpecError``).

    Wrap only a validation step whose whole job is to judge the user's input (e.g. a space's
    ``check_options``), never a constructor or other working code: there, those errors are bugs
    and must reach the CLI as such (traceback, exit status 1).
    """
    try:
        yield
    except SpecError:
        raise
    except (ValueError, KeyError) as err:
        message = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
        raise SpecError(f"{prefix}{message}") from err


@dataclass(frozen=True)
class Field:
    """One option: its type, default and allowed values.

    Attributes:
        type: ``int``, ``float``, ``str``, ``bool``, ``list`` or ``dict``; also ``"duration"``
            (seconds as a number or a string like ``"90s"``, ``"30m"``, ``"2h"``) and ``"file"``
            (a string path, resolved against the spec's folder and required to exist) and ``"path"`` (the
            same, not required to exist yet, and ``""`` left empty).
        default: value when absent; ``REQUIRED`` makes the key mandatory.
        choices: allowed values, if the set is closed.
        min, max: inclusive numeric bounds.
        items: element type of a list.
        help: one line for ``--help`` texts and error messages.
    """

    type: Any
    default: Any = REQUIRED
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    items: Any = None
    help: str = ""

    def describe(self) -> str:
        """What is allowed, in words (used in error messages)."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type == "duration":
            word = "a duration in seconds or like '30m', '2h'"
        elif self.type == "file":
            word = "a path to an existing file"
        elif self.type == "path":
            word = "a path (a string)"
        elif self.type is list and self.items is not None:
            word = "a list of " + _TYPE_WORDS.get(self.items, "a value").split(" ", 1)[1] + "s"
        else:
            word = _TYPE_WORDS.get(self.type, str(self.type))
        bounds = []
        if self.min is not None:
            bounds.append(f">= {self.min:g}")
        if self.max is not None:
            bounds.append(f"<= {self.max:g}")
        return word + (" " + " and ".join(bounds) if bounds else "")

    def check(self, path: str, value: Any, base_dir: Path | None = None, check_files: bool = True) -> Any:
        """Return ``value`` converted to the field's type, or raise ``SpecError`` naming ``path``."""
        if self.type == "file" and not check_files and isinstance(value, str) and value:
            return value
        value = self._convert(path, value, base_dir)
        if self.choices is not None and value not in self.choices:
            raise SpecError(f"{path}: expected {self.describe()}, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise SpecError(f"{path}: expected {self.describe()}, got {value!r}")
        return value

    def _convert(self, path: str, value: Any, base_dir: Path | None) -> Any:
        """Type conversion and checking, without range/choice checks."""
        wrong = SpecError(f"{path}: expected {self.describe()}, got {value!r}")
        if self.type == "duration":
            return parse_duration(value, path)
        if self.type == "file":
            if not isinstance(value, str) or not value:
                raise wrong
            return str(resolve_file(value, base_dir, path))
        if self.type == "path":
            if not isinstance(value, str):
                raise wrong
            if not value or base_dir is None:
                return value
            return str((Path(base_dir) / Path(value).expanduser()).resolve())
        if self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise wrong
            return float(value)
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise wrong
            return value
        if self.type is list:
            if not isinstance(value, list):
                raise wrong
            if self.items is not None:
                item = Field(self.items)
                return [item.check(f"{path}[{i}]", v, base_dir) for i, v in enumerate(value)]
            return list(value)
        if not isinstance(value, self.type):
            raise wrong
        return value


def parse_duration(value: Any, path: str = "duration") -> float:
    """Seconds from a number or a string such as ``"45"``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise SpecError(f"{path}: expected a duration in seconds or like '30m', '2h', got {value!r}")


def resolve_file(value: str, base_dir: Path | None, path: str) -> Path:
    """Resolve ``value`` against ``base_dir`` and require an existing file."""
    candidate = Path(value).expanduser()
    if not candidate.is_absolute() and base_dir is not None:
        candidate = base_dir / candidate
    candidate = candidate.resolve()
    if not candidate.is_file():
        raise SpecError(f"{path}: file not found: {candidate}")
    return candidate


def validate(table: Any, fields: Mapping[str, Field], path: str, base_dir: Path | None = None,
             ignore: tuple[str, ...] = (), check_files: bool = True) -> dict[str, Any]:
    """Check ``table`` against ``fields``; return a new dict with every field, defaults filled.

    Args:
        table: the parsed TOML table (a mapping).
        fields: the schema.
        path: dotted path of ``table`` in the spec, used as the prefix of error messages.
        base_dir: folder that relative ``"file"`` fields are resolved against.
        ignore: keys that belong to the caller (e.g. ``name``) and are passed over here.
        check_files: False to accept ``"file"`` fields unchecked (already checked by the driver;
            the file may live only on the driver's machine).

    Raises:
        SpecError: unknown key, missing required key, wrong type or out-of-range value.
    """
    if not isinstance(table, Mapping):
        raise SpecError(f"{path}: expected a table, got {table!r}")
    allowed = [k for k in fields if k not in ignore]
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in ignore:
            continue
        if key not in fields:
            listed = ", ".join(sorted(allowed)) or "(none)"
            raise SpecError(f"{_join(path, key)}: unknown key; allowed: {listed}")
        out[key] = fields[key].check(_join(path, key), value, base_dir, check_files)
    for key, spec_field in fields.items():
        if key in out or key in ignore:
            continue
        if spec_field.default is REQUIRED:
            raise SpecError(f"{_join(path, key)}: required ({spec_field.describe()})")
        out[key] = spec_field.default
    return out


def _join(path: str, key: str) -> str:
    """Dotted path of a key inside a table."""
    return f"{path}.{key}" if path else key


def json_safe(value: Any) -> Any:
    """A JSON-safe copy: tuples to lists, keys to strings and non-finite floats to strings, recursively."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
