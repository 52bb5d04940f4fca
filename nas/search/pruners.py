"""Pruners by name: stop unpromising trials from their intermediate (per-epoch) values."""

from __future__ import annotations

from typing import Any, Mapping

import optuna

from nas.config import Field, SpecError, validate

PRUNERS: dict[str, tuple[dict[str, Field], Any]] = {
    "none": ({}, lambda o: optuna.pruners.NopPruner()),
    "median": ({"n_startup_trials": Field(int, default=5, min=0, help="trials completed before any is pruned"),
                "n_warmup_steps": Field(int, default=1, min=0,
                                        help="reported steps of a trial before it can be pruned")},
               lambda o: optuna.pruners.MedianPruner(**o)),
    "sha": ({"min_resource": Field(int, default=1, min=1, help="steps every trial gets before the first cut"),
             "reduction_factor": Field(int, default=3, min=2,
                                       help="1/reduction_factor of the trials go on at each rung")},
            lambda o: optuna.pruners.SuccessiveHalvingPruner(**o)),
    "hyperband": ({"min_resource": Field(int, default=1, min=1, help="steps every trial gets before the first cut"),
                   "max_resource": Field(int, default=0, min=0,
                                         help="steps a trial may report at most (0: inferred from the trials)"),
                   "reduction_factor": Field(int, default=3, min=2,
                                             help="1/reduction_factor of the trials go on at each rung")},
                  lambda o: optuna.pruners.HyperbandPruner(**{**o, "max_resource": o["max_resource"] or "auto"})),
}


def validate_pruner(table: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[pruner]`` table with defaults filled; ``SpecError`` names the field."""
    name = table.get("name", "none")
    if name not in PRUNERS:
        raise SpecError(f"pruner.name: unknown pruner {name!r}; known: {', '.join(PRUNERS)}")
    return {"name": name, **validate(table, PRUNERS[name][0], "pruner", ignore=("name",))}


def make_pruner(table: Mapping[str, Any]) -> Any:
    """The Optuna pruner a validated ``[pruner]`` table describes."""
    options = dict(table)
    name = options.pop("name", "none")
    return PRUNERS[name][1](options)
