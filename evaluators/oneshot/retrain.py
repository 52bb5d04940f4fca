"""Standalone training of a supernet search's best candidates (``retrain_top``), with the ``train``
evaluator, so that the inherited-weight ranking can be checked against a real one."""

from __future__ import annotations

import json
from typing import Any, Mapping

from nas import registry
from nas.evaluator import NullReporter


def retrain(space: str, space_options: Mapping[str, Any], options: Mapping[str, Any], epochs: float, seed: int,
            genotypes: Mapping[int, Any]) -> dict[int, dict[str, Any]]:
    """Trial number -> the train evaluator's metrics (or ``{"error": reason}``) for each genotype."""
    from evaluators.train import TrainEvaluator

    sp = registry.make_space(space, dict(space_options))
    evaluator = TrainEvaluator(sp, dict(options))
    out: dict[int, dict[str, Any]] = {}
    for number, genotype in genotypes.items():
        result = evaluator.evaluate(json.dumps(genotype), {"epochs": epochs, "seed": seed}, NullReporter())
        out[int(number)] = dict(result.metrics) if result.error is None else {"error": result.error}
    return out
