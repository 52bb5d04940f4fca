"""Markdown for option declarations: one table row per :class:`nas.config.Field`."""

from __future__ import annotations

import inspect
import math
import re
from typing import Any, Iterable, Mapping

from nas.config import REQUIRED, Field

_TYPE_WORDS = {int: "integer", float: "number", str: "string", bool: "boolean", list: "list", dict: "table",
               "duration": "duration", "file": "path (an existing file)", "path": "path"}
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr):`~?([^`]+)`")  # reST roles -> code
HEADER = "| Field | Type | Default | Allowed | Description |\n|---|---|---|---|---|"


def type_word(field: Field) -> str:
    """The field's type in words (``list of integers``, ``duration``, ``boolean or string``)."""
    if isinstance(field.type, tuple):
        return " or ".join(_TYPE_WORDS.get(t, getattr(t, "__name__", str(t))) for t in field.type)
    word = _TYPE_WORDS.get(field.type, getattr(field.type, "__name__", str(field.type)))
    if field.type is list and field.items is not None:
        word += " of " + _TYPE_WORDS.get(field.items, str(field.items)) + "s"
    return word


def toml_value(value: Any) -> str:
    """A value as it is written in TOML (``true``, ``"x"``, ``[1, 2]``; infinities as ``inf``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def default_text(field: Field) -> str:
    """The default in a table cell: *required*, *unset* (NaN) or the TOML value in code."""
    if field.default is REQUIRED:
        return "*required*"
    if isinstance(field.default, float) and math.isnan(field.default):
        return "*unset*"
    return code(toml_value(field.default))


def allowed_text(field: Field) -> str:
    """Choices or bounds in a table cell ("" when any value of the type goes)."""
    if field.choices is not None:
        return ", ".join(code(toml_value(c)) for c in field.choices)
    if field.min is not None and field.max is not None:
        return f"{field.min:g} to {field.max:g}"
    if field.min is not None:
        return f"&ge; {field.min:g}"
    if field.max is not None:
        return f"&le; {field.max:g}"
    return ""


def code(text: str) -> str:
    """Inline code that survives a table cell (pipes escaped)."""
    return "`" + text.replace("|", "\\|") + "`"


def cell(text: str) -> str:
    """Plain text made safe for a Markdown table cell."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def field_table(fields: Mapping[str, Field], prefix: str = "") -> str:
    """A Markdown table of ``fields``, one row each; ``prefix`` is prepended to the names."""
    if not fields:
        return "*No options.*"
    rows = [HEADER]
    for name, field in fields.items():
        rows.append(f"| {code(prefix + name)} | {type_word(field)} | {default_text(field)} | "
                    f"{allowed_text(field)} | {cell(field.help)} |")
    return "\n".join(rows)


def summary(obj: Any) -> str:
    """The first line (up to the first blank line) of an object's docstring."""
    doc = inspect.getdoc(obj) or ""
    first = doc.split("\n\n", 1)[0]
    return _ROLE.sub(r"`\1`", " ".join(first.split()))


def names_list(names: Iterable[str]) -> str:
    """``a``, ``b``, ``c`` in code."""
    return ", ".join(code(toml_value(n)) for n in names)
