"""What the Python API accepts as a spec and as overrides, turned into a validated :class:`RunSpec`.

A spec is a TOML file's path, a dict with the file's tables, or a :class:`RunSpec` already validated.
The overrides are the command line's options under their Python names (``budget``, ``executor`` ...);
a dotted key (``**{"run.max_time": "10m"}``) sets any field of the spec.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from nas.config import SpecError
from nas.search.spec import RunSpec, load_spec, parse_spec, read_toml

OVERRIDES: dict[str, str] = {  # nas search's options -> the spec fields they set
    "budget": "run.budget", "seed": "run.seed", "storage": "run.storage", "executor": "executor.name",
    "workers": "executor.workers", "ray_address": "executor.address",
}


def overrides_of(options: Mapping[str, Any], evaluator: Any = None) -> dict[str, Any]:
    """The spec fields that ``options`` (``nas search``'s options by their Python names, or dotted
    fields) and ``evaluator`` (a callable or ``"module:callable"``) set; None values set nothing."""
    unknown = sorted(k for k in options if k not in OVERRIDES and "." not in k)
    if unknown:
        raise SpecError(f"{unknown[0]}: unknown option; known: {', '.join(OVERRIDES)} (or a dotted spec field "
                        "such as 'run.max_time')")
    out = {OVERRIDES.get(k, k): v for k, v in options.items() if v is not None}
    if options.get("ray_address") and not options.get("executor"):
        out["executor.name"] = "ray"  # an address means Ray
    if evaluator is not None:
        if not (callable(evaluator) or isinstance(evaluator, str)):
            raise SpecError(f"evaluator: expected a callable or 'package.module:callable', got {evaluator!r}")
        out.update({"evaluator.name": "function", "evaluator.function": evaluator})
    return out


def resolve_spec(spec: str | os.PathLike[str] | Mapping[str, Any] | RunSpec, overrides: Mapping[str, Any]) -> RunSpec:
    """A validated spec from a path, a dict of tables or a :class:`RunSpec`, with ``overrides``
    (dotted fields) applied. A dict's relative files resolve against the current folder."""
    if isinstance(spec, (str, os.PathLike)):
        try:
            return load_spec(spec, overrides)
        except SpecError:
            _refuse_compare_file(spec)
            raise
    if isinstance(spec, RunSpec):
        if not overrides:
            return copy.deepcopy(spec)  # the search fills its storage in; the caller's object stays as it was
        data, base_dir = spec.to_dict(), Path(spec.base_dir)
    elif isinstance(spec, Mapping):
        if "arms" in spec:
            raise SpecError("spec: a nas compare study's spec (it has arms), not a search spec; run it with nas "
                            "compare")
        data, base_dir = dict(spec), Path.cwd()
    else:
        raise SpecError(f"spec: expected a TOML file's path, a dict of tables or a RunSpec, got {type(spec).__name__}")
    data = copy.deepcopy(data)  # the caller's dict stays as it was (functions are kept, not copied)
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        table = data.setdefault(section, {})
        if not isinstance(table, Mapping):
            raise SpecError(f"{section}: expected a table, got {table!r}")
        data[section] = {**table, key: value}
    return parse_spec(data, base_dir)


def _refuse_compare_file(path: str | os.PathLike[str]) -> None:
    """``SpecError`` pointing to ``nas compare`` when the file ``path`` is a compare study's spec (it has
    ``[[arms]]``); called once the file failed as a search spec, so a valid one is read once only."""
    try:
        data = read_toml(path)
    except SpecError:
        return
    if "arms" in data:
        raise SpecError(f"{path}: a nas compare study's spec (it has [[arms]]), not a search spec; run it "
                        f"with: nas compare {path}") from None


def default_out(spec: RunSpec) -> Path:
    """``<spec's folder>/<run name>`` (runs/quickstart.toml -> runs/quickstart/; a dict's folder is the
    current one)."""
    return Path(spec.base_dir) / spec.name


def storable(spec: RunSpec) -> RunSpec:
    """``spec`` as the run folder keeps it: a function passed from Python is written as its
    ``module:qualname`` (what ``nas resume`` imports again)."""
    plain = {k: _reference(v) if callable(v) else v for k, v in spec.evaluator.items()}
    return dataclasses.replace(spec, evaluator=plain)


def _reference(function: Callable[..., Any]) -> str:
    """``module:qualname`` of a function (or of a callable object's class)."""
    named = function if hasattr(function, "__qualname__") else type(function)
    return f"{getattr(named, '__module__', '__main__')}:{named.__qualname__}"
