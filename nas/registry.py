"""Spaces, evaluators, controllers and executors by name, imported lazily.

A name is looked up in the built-in tables, then in the ``nasforge.<kind>`` entry-point group of
installed plugins; ``"package.module:Attr"`` names any importable class directly.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from importlib import metadata
from typing import Any

from nas.config import SpecError, input_errors

BUILTIN: dict[str, dict[str, str]] = {
    "spaces": {
        "nb201": "search_spaces.nb201.space:NB201Space",
        "randwire": "search_spaces.randwire.space:RandWireSpace",
        "scaling": "search_spaces.scaling.space:ScalingSpace",
        "nasnet": "search_spaces.nasnet.space:NASNetSpace",
        "vit": "search_spaces.vit.space:VitSpace",
    },
    "evaluators": {
        "tabular": "evaluators.tabular:TabularEvaluator",
        "synthetic": "evaluators.synthetic:SyntheticEvaluator",
        "train": "evaluators.train:TrainEvaluator",
        "zero-cost": "evaluators.zerocost:ZeroCostEvaluator",
        "supernet": "evaluators.oneshot.inherit:SupernetEvaluator",
        "function": "evaluators.function:FunctionEvaluator",
    },
    "controllers": {
        "random": "nas.controllers.optuna_samplers:RandomController",
        "tpe": "nas.controllers.optuna_samplers:TPEController",
        "nsga2": "nas.controllers.optuna_samplers:NSGA2Controller",
        "gp": "nas.controllers.optuna_samplers:GPController",
        "evolution": "nas.controllers.evolution:EvolutionController",
        "local": "nas.controllers.local:LocalSearchController",
        "guided": "nas.controllers.guided:GuidedController",
        "grid": "nas.controllers.grid:GridController",
        "darts": "nas.controllers.differentiable:DartsController",
        "gdas": "nas.controllers.differentiable:GdasController",
        "drnas": "nas.controllers.differentiable:DrnasController",
    },
    "executors": {
        "inline": "nas.executors.inline:InlineExecutor",
        "ray": "nas.executors.ray:RayExecutor",
    },
}

# Torch-free classes that declare what a built-in accepts (OPTIONS, BUDGET, metrics, task) for
# validating specs; the full class, which imports torch, is only needed to evaluate.
DECLARATIONS: dict[str, dict[str, str]] = {
    "evaluators": {"train": "evaluators.train_options:TrainOptions",
                   "zero-cost": "evaluators.zerocost_options:ZeroCostOptions",
                   "function": "evaluators.function_options:FunctionOptions",
                   "supernet": "evaluators.supernet_options:SupernetOptions"},
}

_SINGULAR = {"spaces": "space", "evaluators": "evaluator", "controllers": "controller", "executors": "executor"}


def names(kind: str) -> list[str]:
    """Known names of ``kind`` (built-ins and plugins), sorted."""
    found = set(BUILTIN[kind])
    try:
        found.update(ep.name for ep in metadata.entry_points(group=f"nasforge.{kind}"))
    except Exception:  # a broken plugin install must not break the core
        pass
    return sorted(found)


def lookup(kind: str, name: str, path: str | None = None, declaration: bool = False) -> Any:
    """The class registered as ``name`` of ``kind``; with ``declaration``, its torch-free declaration
    where it has one (enough to validate options and read metric names, not to evaluate).

    Raises:
        SpecError: unknown name (the message lists the known ones) or a dotted path that does
            not import; prefixed with ``path`` (the spec field) when given.
    """
    where = path or f"{_SINGULAR[kind]}"
    target = (declaration and DECLARATIONS.get(kind, {}).get(name)) or BUILTIN[kind].get(name)
    if target is None and ":" not in name:
        for ep in metadata.entry_points(group=f"nasforge.{kind}"):
            if ep.name == name:
                return ep.load()
        raise SpecError(f"{where}: unknown {_SINGULAR[kind]} {name!r}; known: {', '.join(names(kind))}")
    module_name, _, attr = (target or name).partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise SpecError(f"{where}: cannot import {target or name!r} ({err})") from None


def import_callable(reference: str, field: str, path: str = "", hint: str = "") -> Any:
    """The callable a user names as ``"package.module:callable"`` (the callable may be dotted: a
    class's method), imported from ``sys.path``, else from ``path`` (put first on ``sys.path``, as
    running a script puts its folder), else from the current folder (``python -m`` finds modules
    there, the ``nas`` script does not). ``SpecError`` naming ``field`` when the reference is
    malformed, does not import (whatever the user's module raises) or is not callable; ``hint`` is
    added to the import failure's message."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise SpecError(f"{field}: expected 'package.module:callable', got {reference!r}")
    try:
        target = functools.reduce(getattr, attr.split("."), _import_user(module_name, path))
    except Exception as err:  # the user's module failing to import is bad input, whatever it raises
        raise SpecError(f"{field}: cannot import {reference!r} ({type(err).__name__}: {err}){hint}") from None
    if not callable(target):
        raise SpecError(f"{field}: {reference!r} is a {type(target).__name__}, not a callable")
    return target


def _import_user(module_name: str, path: str) -> Any:
    """A user's module: from ``sys.path``, else from ``path``, else from the current folder."""
    top = module_name.partition(".")[0]
    for folder in (None, path, os.getcwd()):
        if folder is not None and (not folder or not os.path.isdir(folder)):
            continue
        if folder is not None and folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != top:
                raise
    return importlib.import_module(module_name)  # raises: not found anywhere


def make_space(name: str, options: dict[str, Any] | None = None, path: str = "space.name") -> Any:
    """An instance of the space ``name`` with its options validated.

    The options are checked first (``SearchSpace.check_options``: bad input, ``SpecError``); the
    constructor runs on checked options only, so anything it raises is a bug and propagates as is.
    """
    cls = lookup("spaces", name, path)
    options = dict(options or {})
    with input_errors("space: "):  # a plugin's check may raise ValueError/KeyError naming the option
        cls.check_options(options)
    return cls(**options)


# Torch-free declarations that the core needs before anything runs (the CLI's flags come from them).
DECLARED: dict[str, str] = {"recipe": "evaluators.recipe:RECIPE"}


def declared(name: str) -> Any:
    """A torch-free declaration of the evaluators by name (``DECLARED``), e.g. ``nas train``'s recipe fields."""
    module_name, _, attr = DECLARED[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)
